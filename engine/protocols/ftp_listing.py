"""Parse FTP directory listings: MLSD lines (RFC 3659), LIST lines in Unix ``ls -l``
and Windows/IIS formats, and MDTM replies.

Pure functions with no I/O. Every malformed input raises ListingError and nothing else,
so a hostile or broken server can only make the caller report a line, never crash it.
Names are returned exactly as the server sent them (only the line ending is removed):
rejecting ``..``, ``/`` or NUL is the caller's job, which knows the context.

Formats claimed (tests/unit/test_ftp_listing_corpus.py holds real lines of each, with
their sources):
- MLSD facts of any case; ``type=cdir``/``pdir`` and ``type=dir`` named ``.``/``..``
  are not entries; empty facts (``Size=;``) are ignored; ``OS.unix=slink`` links.
- Unix ``ls -l`` as vsftpd, ProFTPD, Pure-FTPd, pyftpdlib, BusyBox, Solaris, BSD, macOS,
  Cygwin, IIS in Unix mode and OS/400's IFS write it: any number of owner/group columns
  (with spaces, or none), ACL/xattr marks (``+`` ``@`` ``.``, also touching the link
  count), device numbers, ``name -> target`` links, English month abbreviations in any
  case, ``Mon DD HH:MM``, ``Mon DD YYYY`` and ``YYYY-MM-DD HH:MM`` dates.
- DOS/IIS: ``MM-DD-YY[YY]  HH:MM[AM|PM]`` then ``<DIR>`` or a size (commas allowed).
Not claimed (such lines raise ListingError): VMS, MVS/z/OS, VM/CMS, OS/400 native
(``*STMF``), NetWare's ``[RWCEAFMS]`` rights, OS/2, EPLF, localized month names
(``3月``, ``Mär``), seconds or time zones in LIST dates (``--full-time``).
A size past 2**63-1 (seen from a DVD server: 2**64-1) is kept as None, unknown.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Literal, NamedTuple

EntryType = Literal["file", "dir", "link", "other"]
Precision = Literal["second", "minute", "day"]

# Longer lines are rejected before any regular expression sees them: a name is at
# most a few hundred bytes, and this bounds the work a hostile server can cause.
MAX_LINE = 16384
# Sizes beyond a signed 64-bit integer are not real.
_MAX_SIZE = 2**63 - 1


class ListingError(ValueError):
    """A listing line or reply that cannot be parsed; the caller reports it."""


class RemoteEntry(NamedTuple):
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


def _parse_size(text: str) -> int | None:
    """A decimal size; ListingError for anything else. None (unknown) beyond 2**63-1:
    the entry is real, only its size is not (checked before int() could meet Python's
    limit on the number of digits)."""
    if not text.isascii() or not text.isdigit():
        raise ListingError(f"bad size {text[:40]!r}")
    if len(text.lstrip("0")) > 19:
        return None
    size = int(text)
    return size if size <= _MAX_SIZE else None


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
    itself and its parent (type=cdir / type=pdir, or type=dir named . or ..), which
    are not entries."""
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
        if value:  # "Size=;" says nothing
            facts[key.lower()] = value

    kind = facts.get("type", "").lower()
    link_target = None
    entry_type: EntryType
    if kind in ("cdir", "pdir"):
        return None
    if kind == "file":
        entry_type = "file"
    elif kind == "dir":
        if name in (".", ".."):
            return None
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

# The permission column with its ACL/xattr mark; "drwxr-x---+1464" has no space after it.
_UNIX_PERM = re.compile(r"[-a-zA-Z?][-rwxsStTlL?]{9}(?:[.+@][ \t]*|[ \t]+)", re.ASCII)
# What follows the owner/group columns: the size ("major, minor" for devices), a date
# with a real month name, and exactly one space before the name. The gaps are
# possessive (`++`): what follows a gap is never blank, and an owner or group column
# tried as the size ("0      0    4096 Nov...") then fails at once instead of giving
# back its spaces one by one (~2 us a column, two columns a line).
_UNIX_TAIL = re.compile(
    r"""
    (?P<size>\d++(?:,[ \t]*+\d++)?)[ \t]++
    (?:
        (?P<mon>jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[ \t]++(?P<day>\d{1,2})[ \t]++
        (?:(?P<hour>\d{1,2}):(?P<minute>\d{2})|(?P<year>\d{4}))
      |
        (?P<iso>(?P<iy>\d{4})-(?P<im>\d{2})-(?P<id>\d{2})[ \t]+(?P<ih>\d{2}):(?P<imin>\d{2}))
    )
    [ ]
    """,
    re.VERBOSE | re.ASCII | re.IGNORECASE,
)
_GAP = re.compile(r"[ \t]+")

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


def _unix_splits(line: str, start: int) -> Iterator[int]:
    """Where the size column may begin: after the first, second, ... column that follows
    the permissions, and only then right after them (a line without owner or link
    count). So "1 jan 20 4096 Mar 18 18:58 x" (owner jan, group 20) is never read as
    size 1 dated "jan 20 4096"."""
    for gap in _GAP.finditer(line, start):
        yield gap.end()
    yield start


def _unix_entry(line: str, tail: re.Match[str], now: datetime) -> RemoteEntry | None:
    """The entry for one split of the line; ListingError (or ValueError from datetime)
    when its date or name is impossible, so the caller tries the next split."""
    entry_type = _unix_type(line[0])
    size_text = tail["size"]
    size = None if "," in size_text else _parse_size(size_text)
    precision: Precision
    if tail["iso"]:
        # ls --time-style=long-iso; full-iso (seconds and an offset) is not supported
        mtime = datetime(int(tail["iy"]), int(tail["im"]), int(tail["id"]), int(tail["ih"]), int(tail["imin"]))
        precision = "minute"
    else:
        month = _MONTHS[tail["mon"].lower()]
        day = int(tail["day"])
        if tail["year"]:
            mtime = datetime(int(tail["year"]), month, day)
            precision = "day"
        else:
            hour, minute = int(tail["hour"]), int(tail["minute"])
            if not (1 <= day <= 31 and hour < 24 and minute < 60):
                raise ListingError(f"bad date {tail['mon']} {day} {hour}:{minute:02d}")
            mtime = _year_less(month, day, hour, minute, now)
            precision = "minute"
    name = line[tail.end():]
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


def _parse_unix(line: str, start: int, now: datetime) -> RemoteEntry | None:
    """The first split of the columns after the permissions whose size and date are
    possible (see _unix_splits for the order). The earliest wins, so a name that looks
    like a date does not confuse it."""
    first_error: Exception | None = None
    for position in _unix_splits(line, start):
        tail = _UNIX_TAIL.match(line, position)
        if tail is None:
            continue
        try:
            return _unix_entry(line, tail, now)
        except (ListingError, ValueError, OverflowError) as exc:
            first_error = first_error or exc
    if first_error is not None:
        raise ListingError(f"bad LIST line {line[:80]!r}: {first_error}")
    raise ListingError(f"unrecognized LIST line {line[:80]!r}")


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
        perm = _UNIX_PERM.match(line)
        if perm is not None:
            return _parse_unix(line, perm.end(), now)
        match = _DOS.match(line)
        if match is not None:
            return _parse_dos(match)
    except ListingError:
        raise
    except (ValueError, OverflowError) as exc:  # datetime() out of range and the like
        raise ListingError(f"bad LIST line {line[:80]!r}: {exc}") from None
    raise ListingError(f"unrecognized LIST line {line[:80]!r}")


class Listing:
    """One directory's listing as the server sent it, parsed on first use: a mirror
    that finds the listing unchanged since its last run (`digest`) never parses it.
    `bad_lines` are the lines no parser understood."""

    def __init__(self, raw: bytes = b"", *, exact_times: bool = False) -> None:
        self.raw = raw
        self.exact_times = exact_times  # MLSD (UTC, seconds) rather than LIST
        self._parsed: tuple[list[RemoteEntry], list[str]] | None = None

    def digest(self, salt: bytes = b"") -> bytes:
        """A hash of the raw listing (and `salt`): equal digests, equal listings."""
        return hashlib.blake2b(self.raw, digest_size=16, key=salt[:64]).digest()

    @property
    def entries(self) -> list[RemoteEntry]:
        return self._parse()[0]

    @property
    def bad_lines(self) -> list[str]:
        return self._parse()[1]

    def _parse(self) -> tuple[list[RemoteEntry], list[str]]:
        if self._parsed is None:
            entries: list[RemoteEntry] = []
            bad: list[str] = []
            now = datetime.now(timezone.utc).replace(tzinfo=None)
            for raw in self.raw.split(b"\n"):
                line = raw.decode("utf-8", "surrogateescape").rstrip("\r")
                if not line.strip():
                    continue
                try:
                    entry = parse_mlsd_line(line) if self.exact_times else parse_list_line(line, now=now)
                except ListingError:
                    bad.append(line)
                    continue
                if entry is not None:
                    entries.append(entry)
            self._parsed = (entries, bad)
        return self._parsed
