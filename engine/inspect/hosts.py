"""Pure functions about host names: organizational domains (by the Public Suffix
List bundled with `publicsuffixlist`, offline), IPv4 addresses written
as integers/hex/octal, punycode and mixed-script labels. Kept apart from the rules
so each trick can be tested (and fuzzed) on its own."""

from __future__ import annotations

import functools
import ipaddress
import re
import unicodedata

from publicsuffixlist import PublicSuffixList

_IP_PART = re.compile(r"^(0x[0-9a-f]+|0[0-7]*|[1-9][0-9]*)$")


def normalize(host: str) -> str:
    """Lower case, no trailing dot, no brackets: the form the other functions expect."""
    return host.strip().strip("[]").rstrip(".").lower()


def org_domain(host: str) -> str:
    """The organization's domain: the registrable domain under the Public Suffix List
    (`bank.co.uk`, `bank.co.at`, `alice.github.io`: private suffixes such as
    `github.io` and `blogspot.com` count, so two of their users are two organizations).
    An IP address, a public suffix or a name with no registrable part is its own."""
    host = normalize(host)
    if parse_ip(host) is not None:
        return host
    return _suffixes().privatesuffix(host) or host


@functools.cache
def _suffixes() -> PublicSuffixList:
    """The list bundled with `publicsuffixlist` (offline; parsed once, ~0.1 s)."""
    return PublicSuffixList()


def parse_ip(host: str) -> tuple[ipaddress.IPv4Address | ipaddress.IPv6Address, str] | None:
    """The address a URL host names and how it was written ('dotted', 'integer',
    'hex', 'octal' or 'mixed'), or None for a name.

    Follows inet_aton(), which browsers and curl honour: 1 to 4 dot-separated parts,
    each decimal, 0x-hex or 0-octal, the last part filling the remaining bytes, so
    `3232235777`, `0xC0A80001` and `0300.0250.0.1` all mean 192.168.0.1."""
    host = normalize(host)
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0]), "ipv6"
        except ValueError:
            return None
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or not all(_IP_PART.match(part) for part in parts):
        return None
    numbers, forms = [], set()
    for part in parts:
        if part == "0":
            numbers.append(0)
        elif part.startswith("0x"):
            numbers.append(int(part[2:] or "0", 16))
            forms.add("hex")
        elif len(part) > 1 and part.startswith("0"):
            numbers.append(int(part, 8))
            forms.add("octal")
        else:
            numbers.append(int(part))
            forms.add("decimal")
    *head, last = numbers
    if any(number > 255 for number in head) or last >= 256 ** (5 - len(numbers)):
        return None
    value = last
    for index, number in enumerate(head):
        value += number << (8 * (3 - index))
    exotic = forms - {"decimal"}
    if not exotic:
        form = "dotted" if len(parts) == 4 else "integer" if len(parts) == 1 else "short dotted"
    else:
        form = exotic.pop() if len(exotic) == 1 else "mixed"
    return ipaddress.IPv4Address(value), form


def unicode_host(host: str) -> str | None:
    """The host with its `xn--` labels decoded, or None if it has none (or they do not decode)."""
    labels = normalize(host).split(".")
    if not any(label.startswith("xn--") for label in labels):
        return None
    try:
        return ".".join(
            label[4:].encode("ascii").decode("punycode") if label.startswith("xn--") else label for label in labels
        )
    except (UnicodeError, ValueError):
        return None


def script(char: str) -> str | None:
    """A letter's script from its Unicode name ('LATIN', 'CYRILLIC', ...); None for non-letters.

    The name's first word is a close enough stand-in for the Script property, which
    the stdlib does not expose."""
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    return name.split(" ", 1)[0] if name else "UNKNOWN"


#: Cyrillic and Greek letters drawn like Latin ones (a subset of Unicode's
#: confusables.txt): enough to spell `аррӏе` or `раураӏ` without a Latin letter.
LATIN_LOOKALIKES = {
    "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "һ": "h", "і": "i", "ј": "j", "к": "k",
    "ӏ": "l", "м": "m", "п": "n", "о": "o", "р": "p", "ԛ": "q", "г": "r", "ѕ": "s", "т": "t",
    "ц": "u", "ѵ": "v", "ԝ": "w", "х": "x", "у": "y", "з": "3",
    "α": "a", "ϲ": "c", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p", "τ": "t", "υ": "u", "χ": "x",
}


def latin_skeleton(label: str) -> str | None:
    """The Latin word a label imitates when every letter is a look-alike (`аррӏе` -> `apple`), else None."""
    letters = [char for char in label if char.isalpha()]
    if not letters or not all(char in LATIN_LOOKALIKES for char in letters):
        return None
    return "".join(LATIN_LOOKALIKES.get(char, char) for char in label)


def mixed_script_labels(host: str) -> list[str]:
    """Labels that mix letters of several scripts, like Latin 'paypal' with a Cyrillic 'а'."""
    mixed = []
    for label in host.split("."):
        scripts = {script(char) for char in label} - {None}
        if len(scripts) > 1:
            mixed.append(f"{label} ({'+'.join(sorted(s for s in scripts if s))})")
    return mixed
