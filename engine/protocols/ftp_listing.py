"""Parse FTP directory listings: MLSD lines (RFC 3659), LIST lines in Unix ``ls -l``
and Windows/IIS formats, and MDTM replies.

Pure functions with no I/O. Every malformed input raises ListingError and nothing else,
so a hostile or broken server can only make the caller report a line, never crash it.
Names are returned exactly as the server sent them (only the line ending is removed):
rejecting ``..``, ``/`` or NUL is the caller's job, which knows the context.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Literal

EntryType = Literal["file", "dir", "link", "other"]
Precision = Literal["second", "minute", "day"]

# Longer lines are rejected before any regular expression sees them: a name is at
# most a few hundred bytes, and this bounds the work a hostile server can cause.
MAX_LINE = 16384
# Sizes beyond a signed 64-bit integer are not real.
_MAX_SIZE = 2**63 - 1


class ListingError(ValueError):
    """A listing line or reply that cannot be parsed; the caller reports it."""


@dataclass(frozen=True, slots=True)
class RemoteEntry:
    """One directory entry as the server described it.

    mtime: MLSD gives an aware UTC datetime with ``mtime_precision == "second"``.
    LIST gives a *naive* datetime in the server's clock (we do not know its time zone;
    vsftpd and pyftpdlib use UTC by default), "minute" for ``Mon DD HH:MM`` and
    DOS lines, "day" for ``Mon DD YYYY``. Mixing the two by mistake raises TypeError on
    comparison instead of silently shifting by the server's UTC offset.
    size: the server's number, meaningful for files (directories often show 4096);
    None when not given (DOS ``<DIR>``, device files, MLSD without size).
    """

    name: str
    type: EntryType
    size: int | None
    mtime: datetime | None
    mtime_precision: Precision | None
    link_target: str | None = None


def _strip_eol(line: str) -> str:
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    if len(line) > MAX_LINE:
        raise ListingError(f"listing line of {len(line)} characters")
    return line


def _parse_size(text: str) -> int:
    """A decimal size; ListingError for anything else (also beyond 2**63-1, before int()
    would meet Python's limit on the number of digits)."""
    if not text.isascii() or not text.isdigit():
        raise ListingError(f"bad size {text[:40]!r}")
    if len(text.lstrip("0")) > 19:
        raise ListingError(f"size too large: {text[:40]!r}...")
    size = int(text)
    if size > _MAX_SIZE:
        raise ListingError(f"size too large: {size}")
    return size


# ---------------------------------------------------------------------------- MLSD

_TIMEVAL = re.compile(r"(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,9}))?", re.ASCII)


def _parse_timeval(text: str) -> datetime:
    """RFC 3659 time-val, YYYYMMDDHHMMSS[.sss], always UTC."""
    match = _TIMEVAL.fullmatch(text)
    if match is None:
        raise ListingError(f"bad time value {text[:40]!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction = match.group(7) or ""
    microsecond = int((fraction + "000000")[:6]) if fraction else 0
    try:
        return datetime(year, month, day, hour, minute, second, microsecond, timezone.utc)
    except ValueError as exc:
        raise ListingError(f"bad time value {text!r}: {exc}") from None


def parse_mlsd_line(line: str) -> RemoteEntry | None:
    """One MLSD line, ``fact=value;fact=value; name``. None for the listed directory
    itself and its parent (type=cdir / type=pdir), which are not entries."""
    line = _strip_eol(line)
    if line.startswith(" "):
        facts_text, name = "", line[1:]  # no facts at all
    else:
        # Facts end with ";" and one space; the name may contain both.
        end = line.find("; ")
        if end >= 0:
            facts_text, name = line[:end], line[end + 2:]
        else:
            # Non-conforming server without the final ";": facts have no spaces.
            facts_text, sep, name = line.partition(" ")
            if not sep:
                raise ListingError(f"MLSD line without a name: {line[:80]!r}")
    if not name:
        raise ListingError(f"MLSD line without a name: {line[:80]!r}")
    facts: dict[str, str] = {}
    for fact in facts_text.split(";"):
        if not fact:
            continue
        key, sep, value = fact.partition("=")
        if not sep or not key:
            raise ListingError(f"bad MLSD fact {fact[:40]!r}")
        facts[key.lower()] = value

    kind = facts.get("type", "").lower()
    link_target = None
    entry_type: EntryType
    if kind in ("cdir", "pdir"):
        return None
    if kind == "file":
        entry_type = "file"
    elif kind == "dir":
        entry_type = "dir"
    elif kind.startswith("os.unix=slink"):
        # "OS.unix=slink:/target" (target optional); keep the target's case.
        entry_type = "link"
        raw = facts["type"]
        colon = raw.find(":")
        link_target = raw[colon + 1:] if colon >= 0 and colon + 1 < len(raw) else None
    elif kind in ("os.unix=symlink", "os.unix=link"):
        entry_type = "link"
    else:
        entry_type = "other"  # devices, fifos, unknown or missing type

    size: int | None = None
    size_text = facts.get("size", facts.get("sizd"))
    if size_text is not None:
        size = _parse_size(size_text)
    mtime = None
    if "modify" in facts:
        mtime = _parse_timeval(facts["modify"])
    return RemoteEntry(
        name=name,
        type=entry_type,
        size=size,
        mtime=mtime,
        mtime_precision="second" if mtime is not None else None,
        link_target=link_target,
    )


# ---------------------------------------------------------------------------- MDTM


def parse_mdtm(reply: str) -> datetime:
    """An MDTM reply, ``213 YYYYMMDDHHMMSS[.sss]`` (the "213 " may be omitted), as an
    aware UTC datetime."""
    text = _strip_eol(reply).strip()
    if text.startswith("213"):
        text = text[3:].lstrip(" ")
    return _parse_timeval(text)


# ---------------------------------------------------------------------------- LIST

_MONTHS = {
    name: number
    for number, name in enumerate(
        ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
        start=1,
    )
}

# perms, then owner/group/links as whitespace-separated tokens (any number, also none),
# then the size ("major, minor" for devices), the date and exactly one space before
# the name. The earliest place where size and date match wins, so a name that looks
# like a date does not confuse it.
_UNIX = re.compile(
    r"""
    (?P<perm>[-a-zA-Z?][-rwxsStTlL?]{9})[.+@]?[ \t]+
    (?P<ids>(?:\S+[ \t]+)*?)
    (?P<size>\d+|\d+,[ \t]*\d+)[ \t]+
    (?:
        (?P<mon>[A-Za-z]{3})[ \t]+(?P<day>\d{1,2})[ \t]+
        (?:(?P<hour>\d{1,2}):(?P<minute>\d{2})|(?P<year>\d{4}))
      |
        (?P<iso>(?P<iy>\d{4})-(?P<im>\d{2})-(?P<id>\d{2})[ \t]+(?P<ih>\d{2}):(?P<imin>\d{2}))
    )
    [ ](?P<name>.*)
    """,
    re.VERBOSE | re.ASCII | re.DOTALL,
)

# "01-23-24  03:04PM       <DIR>          name", "12-31-2023  11:59AM   1234 name",
# also 24-hour clocks and "/" separators.
_DOS = re.compile(
    r"""
    (?P<month>\d{2})[-/](?P<day>\d{2})[-/](?P<year>\d{4}|\d{2})[ \t]+
    (?P<hour>\d{1,2}):(?P<minute>\d{2})[ \t]*(?P<ampm>[AaPp][Mm])?[ \t]+
    (?:<(?P<tag>[A-Za-z]+)>[ \t]+|(?P<size>\d[\d,]*)[ ])
    (?P<name>.*)
    """,
    re.VERBOSE | re.ASCII | re.DOTALL,
)

_HALF_YEAR = timedelta(days=183)


@functools.lru_cache(maxsize=1024)
def _year_less(month: int, day: int, hour: int, minute: int, now: datetime) -> datetime:
    """``ls`` shows HH:MM instead of the year for recent dates: pick the year that puts
    the date in (now - ~6 months, now + ~6 months]. A 29 February outside that window
    goes to the nearest leap year. Cached: a listing's `now` is the same for all its
    lines, and files of one directory often share their minute."""
    reference = now.replace(tzinfo=None)
    upper = reference + _HALF_YEAR
    lower = upper - timedelta(days=365)
    candidates = []
    for year in range(reference.year - 4, reference.year + 5):
        try:
            candidates.append(datetime(year, month, day, hour, minute))
        except ValueError:
            continue
    if not candidates:
        raise ListingError(f"no year has {month:02d}-{day:02d} {hour:02d}:{minute:02d}")
    for candidate in candidates:
        if lower < candidate <= upper:
            return candidate
    return min(candidates, key=lambda candidate: abs(candidate - reference))


def _unix_type(char: str) -> EntryType:
    if char == "-":
        return "file"
    if char == "d":
        return "dir"
    if char == "l":
        return "link"
    return "other"


def _parse_unix(match: re.Match[str], now: datetime) -> RemoteEntry | None:
    entry_type = _unix_type(match["perm"][0])
    size_text = match["size"]
    size = None if "," in size_text else _parse_size(size_text)
    precision: Precision
    if match["iso"]:
        # ls --time-style=long-iso; full-iso (seconds and an offset) is not supported
        mtime = datetime(int(match["iy"]), int(match["im"]), int(match["id"]),
                         int(match["ih"]), int(match["imin"]))
        precision = "minute"
    else:
        month = _MONTHS.get(match["mon"].lower())
        if month is None:
            raise ListingError(f"unknown month {match['mon']!r}")
        day = int(match["day"])
        if match["year"]:
            mtime = datetime(int(match["year"]), month, day)
            precision = "day"
        else:
            hour, minute = int(match["hour"]), int(match["minute"])
            if not (1 <= day <= 31 and hour < 24 and minute < 60):
                raise ListingError(f"bad date {match['mon']} {day} {hour}:{minute:02d}")
            mtime = _year_less(month, day, hour, minute, now)
            precision = "minute"
    name = match["name"]
    link_target = None
    if entry_type == "link":
        name, arrow, target = name.partition(" -> ")
        link_target = target if arrow else None
    if not name:
        raise ListingError("LIST line without a name")
    if entry_type == "dir" and name in (".", ".."):
        return None  # the directory itself and its parent, like MLSD's cdir/pdir
    if entry_type == "other":
        size = None  # devices, fifos, sockets: no content to transfer
    return RemoteEntry(name, entry_type, size, mtime, precision, link_target)


def _parse_dos(match: re.Match[str]) -> RemoteEntry | None:
    year = int(match["year"])
    if len(match["year"]) == 2:
        year += 2000 if year < 70 else 1900  # IIS's two-digit years
    hour, minute = int(match["hour"]), int(match["minute"])
    ampm = (match["ampm"] or "").upper()
    if ampm:
        if not 1 <= hour <= 12:
            raise ListingError(f"bad 12-hour time {hour}:{minute:02d}{ampm}")
        hour = hour % 12 + (12 if ampm == "PM" else 0)
    mtime = datetime(year, int(match["month"]), int(match["day"]), hour, minute)
    name = match["name"]
    if not name:
        raise ListingError("LIST line without a name")
    if match["tag"] is not None:
        entry_type: EntryType = "dir" if match["tag"].upper() == "DIR" else "other"
        if entry_type == "dir" and name in (".", ".."):
            return None
        return RemoteEntry(name, entry_type, None, mtime, "minute")
    size = _parse_size(match["size"].replace(",", ""))
    return RemoteEntry(name, "file", size, mtime, "minute")


def parse_list_line(line: str, *, now: datetime) -> RemoteEntry | None:
    """One LIST line: Unix ``ls -l`` style (vsftpd, ProFTPD, pyftpdlib, BusyBox, with
    numeric or named owners, device files, symlinks ``name -> target``) or DOS/IIS
    style. None for lines that are not entries ("total N", blank, "." and "..").

    now: the server's current time, used to choose the year of ``Mon DD HH:MM`` dates;
    pass it in the server's time zone (UTC for vsftpd and pyftpdlib by default).
    """
    line = _strip_eol(line)
    if not line.strip():
        return None
    if line.startswith("total ") and line[6:].strip().isdigit():
        return None
    try:
        match = _UNIX.match(line)
        if match is not None:
            return _parse_unix(match, now)
        match = _DOS.match(line)
        if match is not None:
            return _parse_dos(match)
    except ListingError:
        raise
    except (ValueError, OverflowError) as exc:  # datetime() out of range and the like
        raise ListingError(f"bad LIST line {line[:80]!r}: {exc}") from None
    raise ListingError(f"unrecognized LIST line {line[:80]!r}")
