"""Mail merge for `mail.send`: a CSV file, one message per row.

The header row names the fields; `to` (one address or several, comma-separated in
one cell) is required, every other column is a field the templates may use as
`$name`. The whole file is checked before the first message goes (`check`), so a bad
row stops the job with nothing sent and an error naming `file:line`; then `rows`
reads it again, one row at a time (a long list never sits in memory)."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from pathlib import Path

from xfer.errors import PermanentError
from xfer.mail.compose import addresses

TO = "to"


def rows(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    """(line number, fields) for each data row; blank lines are skipped."""
    with open(path, newline="", encoding="utf-8-sig") as stream:
        reader = csv.DictReader(stream)
        for row in reader:
            yield reader.line_num, row


def check(path: Path, used: set[str], one_line: set[str]) -> int:
    """Check the header and every row of `path` against the fields the templates use
    (`used`; those in `one_line` land in headers); the number of rows. PermanentError
    names the file and line of the first problem."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as stream:
            header = next(csv.reader(stream), None)
    except (OSError, UnicodeDecodeError) as exc:
        raise PermanentError(f"merge {path}: cannot read it ({exc.__class__.__name__}: {exc})") from None
    if not header:
        raise PermanentError(f"merge {path}: empty, expected a header row with a '{TO}' column")
    missing = sorted(used - set(header))
    if TO not in header:
        raise PermanentError(f"{path}:1: no '{TO}' column in the header row")
    if missing:
        raise PermanentError(f"{path}:1: the templates use ${missing[0]} but the header row has no such column")
    count = 0
    try:
        for line, row in rows(path):
            count += 1
            _check_row(path, line, row, len(header), one_line)
    except (csv.Error, UnicodeDecodeError) as exc:
        raise PermanentError(f"{path}: {exc}") from None
    return count


def _check_row(path: Path, line: int, row: dict[str, str], width: int, one_line: set[str]) -> None:
    where = f"{path}:{line}"
    if None in row:  # DictReader's key for cells past the header
        raise PermanentError(f"{where}: more cells than the header row has columns ({width})")
    if any(value is None for value in row.values()):
        raise PermanentError(f"{where}: fewer cells than the header row has columns ({width})")
    if not row[TO].strip():
        raise PermanentError(f"{where}: '{TO}' is empty")
    try:
        addresses(row[TO])
    except ValueError as exc:
        raise PermanentError(f"{where}: {TO}: {exc}") from None
    for name in one_line:
        if any(ch in row[name] for ch in "\r\n\0"):
            raise PermanentError(f"{where}: {name} goes into a header and must be one line")
