"""What an `ls` gives back, whatever the protocol: rows with named columns, plus
the problems met on the way (an unreadable directory, a line no parser understood)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Listing:
    """`columns` are the row keys the table shows, in order (JSON gives every key)."""

    columns: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: A problem that means the listing is incomplete (exit code 1), not a note.
    incomplete: bool = False
