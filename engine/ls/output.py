"""A listing as a plain table (like `ls -l`: sizes right-aligned, times in UTC) or
as JSON (a list of entries, every key of every row)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, TextIO

from xfer.ls.listing import Listing

_TYPE_MARK = {"dir": "d", "file": "-", "link": "l"}
_TIME_FORMAT = {"second": "%Y-%m-%d %H:%M:%S", "minute": "%Y-%m-%d %H:%M", "day": "%Y-%m-%d"}
_HEADINGS = {"mtime": "TIME (UTC)", "type": "T"}
_NUMBERS = frozenset({"size", "low", "high", "count", "messages"})


def _cell(column: str, row: dict[str, Any]) -> str:
    value = row.get(column)
    if value is None:
        return "-"
    if column == "type":
        return _TYPE_MARK.get(value, "?")
    if column == "mtime":
        return datetime.fromisoformat(value).strftime(_TIME_FORMAT.get(row.get("precision") or "second", "%Y-%m-%d %H:%M:%S"))
    return str(value)


def print_table(listing: Listing, out: TextIO) -> None:
    """Columns padded to their widest cell; the last column (a name) is not padded."""
    headings = [_HEADINGS.get(column, column.upper()) for column in listing.columns]
    cells = [[_cell(column, row) for column in listing.columns] for row in listing.rows]
    widths = [max(len(line[i]) for line in [headings, *cells]) for i in range(len(headings))]
    for line in [headings, *cells]:
        padded = [
            text.rjust(width) if column in _NUMBERS else text.ljust(width)
            for column, text, width in zip(listing.columns[:-1], line, widths)
        ]
        print("  ".join([*padded, line[-1]]).rstrip(), file=out)


def print_json(listing: Listing, out: TextIO) -> None:
    json.dump(listing.rows, out, indent=2, ensure_ascii=False)
    out.write("\n")
