"""The JSONL output: one article per line.

A run writes its articles to `PATH.part` in article order as chunks complete, and
only at the end of the run moves them into PATH: appended for incremental scans
(the file holds everything harvested so far), replacing it for explicit ranges
(`last`, `since`, `articles`: the file is that query's answer). The caller records
PATH's size in the state DB in the same transaction as the high-water marks; a run
that dies between the append and that commit is undone at the next start by
truncating PATH back to the recorded size, so an article is never written twice."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

#: One encoder for every line (json.dumps with options builds a new one per call).
encode_record: Callable[[Any], str] = json.JSONEncoder(ensure_ascii=False, check_circular=False).encode


@dataclass(frozen=True, slots=True)
class Encoded:
    """Records already encoded as JSONL lines (`data` ends with a newline unless empty)."""

    data: bytes
    count: int

    def __len__(self) -> int:
        return self.count

    @classmethod
    def lines(cls, lines: list[str]) -> Encoded:
        """From JSON texts (the list gets an empty string appended)."""
        count = len(lines)
        lines.append("")  # for the last newline, without copying the whole text again
        return cls("\n".join(lines).encode() if count else b"", count)


class JsonlOutput:
    def __init__(self, path: Path, *, append: bool) -> None:
        self.path = path
        self.append = append
        self.staging = path.with_name(path.name + ".part")
        self._file: BinaryIO | None = None
        self.written = 0

    def recover(self, committed_size: int | None) -> bool:
        """Remove a dead run's staging file and cut PATH back to the committed size.
        Returns True when PATH was cut."""
        self.staging.unlink(missing_ok=True)
        if not self.append or committed_size is None or not self.path.exists():
            return False
        if self.path.stat().st_size > committed_size:
            os.truncate(self.path, committed_size)
            return True
        return False

    def open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.staging, "wb")

    def write(self, records: Iterable[dict[str, Any]] | Encoded) -> None:
        assert self._file is not None, "open() first"
        if not isinstance(records, Encoded):
            records = Encoded.lines([encode_record(record) for record in records])
        self._file.write(records.data)
        self.written += records.count

    def commit(self, annotate: Callable[[dict[str, Any]], dict[str, Any] | None] | None = None) -> int:
        """Move the staged articles into PATH (through `annotate`, which may add fields
        or drop a record by returning None); return PATH's new size."""
        assert self._file is not None, "open() first"
        self._file.close()
        self._file = None
        if annotate is not None:
            self._rewrite(annotate)
        if not self.append or not self.path.exists():  # nothing to append to: a rename will do
            os.replace(self.staging, self.path)
            return self.path.stat().st_size
        with open(self.path, "ab") as out, open(self.staging, "rb") as staged:
            while block := staged.read(1 << 20):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
            size = out.tell()
        self.staging.unlink()
        return size

    def _rewrite(self, annotate: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
        rewritten = self.staging.with_name(self.staging.name + "2")
        with open(self.staging, "rb") as staged, open(rewritten, "wb") as out:
            for line in staged:
                record = annotate(json.loads(line))
                if record is not None:
                    out.write(encode_record(record).encode() + b"\n")
        os.replace(rewritten, self.staging)

    def abandon(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        self.staging.unlink(missing_ok=True)
