"""Version order of release file names, for `pick: newest`.

A name is read as `PRODUCT-VERSION[-QUALIFIER].SUFFIX`: archive suffixes (`.tar.gz`,
`.tar.xz`, `.tgz`, `.zip`, `.tar.bz2`, ...) and qualifiers (`-src`, `-bin`) are
dropped; the version starts at the first `-`/`_`-separated part that begins with a
digit (or `v` and a digit) and runs over the parts after it that are numbers or
pre-release marks, so `boost_1_84_0`, `linux-6.7-rc3` and `hello-1.0-beta2` all have
one. The version is compared by PEP 440 rules (`packaging`): `2.9 < 2.10 < 2.12 <
2.12.1`, and `1.0a1 < 1.0-beta2 < 1.0rc1 < 1.0`. A version PEP 440 cannot read is
compared by its numbers alone. Names without a version (`hello-latest.tar.gz`) sort
before every versioned name: they are picked only when no versioned name matches."""

from __future__ import annotations

import re

from packaging.version import InvalidVersion, Version

_ARCHIVE_SUFFIX = re.compile(
    r"(?:\.(?:tar|gz|tgz|xz|txz|bz2|tbz|tbz2|zip|zst|tzst|lz|lzma|7z|Z|jar|deb|rpm|exe|msi|dmg|iso))+$",
    re.IGNORECASE,
)
_QUALIFIER = re.compile(r"^(?:src|source|sources|bin|binary|dist|full|orig|doc|docs|all|noarch)$", re.IGNORECASE)
_VERSION_START = re.compile(r"^v?\d")
_VERSION_PART = re.compile(r"^(?:\d[\w.]*|(?:a|b|c|rc|alpha|beta|pre|preview|dev|post)\.?\d*)$", re.IGNORECASE)
_NO_VERSION = Version("0")


def release_version(name: str) -> Version | None:
    """The version in a release file name, or None when it has none."""
    parts = re.split(r"[-_]", _ARCHIVE_SUFFIX.sub("", name))
    start = next((index for index, part in enumerate(parts) if _VERSION_START.match(part)), None)
    if start is None:
        return None
    taken = [parts[start]]
    for part in parts[start + 1 :]:
        if _QUALIFIER.match(part) or not _VERSION_PART.match(part):
            break
        taken.append(part)
    text = ".".join(taken)
    try:
        return Version(text)
    except InvalidVersion:
        numbers = re.findall(r"\d+", text)
        return Version(".".join(numbers)) if numbers else None


def version_key(name: str) -> tuple[int, Version, str]:
    """Sort key: versioned names by version (then name), after all unversioned ones."""
    version = release_version(name)
    return (0, _NO_VERSION, name) if version is None else (1, version, name)
