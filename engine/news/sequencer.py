"""Releases chunk results in article order, whatever order the chunks finish in,
and bounds what waits to be released.

Chunks of one group run on several connections at once; outputs and high-water
marks must still advance in article order and only over what was written without a
gap, so that a failed chunk is refetched by the next run and nothing is skipped.

Behind a slow chunk the later ones wait in memory, bodies included. So a chunk asks
for its `turn` before it fetches: the next chunk in order of its group always gets
it (it releases what waits); a later one only while what waits, plus what the chunks
already fetching will bring (each estimated as the largest chunk seen so far), stays
within `limit` bytes. Before any chunk is measured, `FIRST_WAVE` may fetch at once.
A failed chunk stops its group there: chunks after it are dropped or skipped (the
next run reads them), chunks before it are still written."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sized
from typing import Any, Generic, TypeVar

R = TypeVar("R", bound=Sized)  # a chunk's records: dicts, or lines already encoded

#: Bytes (the records' text, bodies included) one job may hold behind missing chunks.
HELD_LIMIT = 64 * 1024 * 1024
#: Chunks that may fetch at once before the first one has been measured.
FIRST_WAVE = 4


def text_size(records: Any) -> int:
    """Roughly what `records` hold: encoded JSONL's bytes, or the text of each record."""
    data = getattr(records, "data", None)
    if isinstance(data, bytes):
        return len(data)
    return sum(len(value) for record in records for value in record.values() if isinstance(value, str))


class Sequencer(Generic[R]):
    def __init__(self, limit: int | None = None, measure: Callable[[R], int] = text_size) -> None:
        self.limit = HELD_LIMIT if limit is None else limit
        self.measure = measure
        self.held_bytes = 0
        self.peak_bytes = 0  # the most that ever waited: for the report and the tests
        self.fetching = 0  # chunks that had their turn and have not finished
        self.waiting = 0  # chunks waiting for their turn
        self._largest = 0
        self._changed = asyncio.Event()
        self._next: dict[str, int] = {}
        self._held: dict[str, dict[int, tuple[int, R, int]]] = {}
        self._stop: dict[str, int] = {}  # group -> its first failed chunk
        self._dropped: dict[str, int] = {}  # records dropped after a failed chunk

    def __repr__(self) -> str:
        return f"<Sequencer {self.held_bytes}/{self.limit} bytes held, {self.fetching} fetching, {self.waiting} waiting>"

    def stopped(self, group: str, index: int) -> bool:
        """Whether chunk `index` comes after a failed chunk of its group."""
        return index > self._stop.get(group, index)

    async def turn(self, group: str, index: int) -> bool:
        """Wait until chunk `index` of `group` may be fetched; False if it comes after
        a failed chunk (skip it). After True, call `finished` once it has ended."""
        self.waiting += 1
        try:
            while not self._may_fetch(group, index):
                changed = self._changed
                await changed.wait()
        finally:
            self.waiting -= 1
        if self.stopped(group, index):
            return False
        self.fetching += 1
        return True

    def _may_fetch(self, group: str, index: int) -> bool:
        if self.stopped(group, index) or index == self._next.get(group, 0):
            return True
        if not self._largest:
            return self.fetching < FIRST_WAVE
        return self.held_bytes + (self.fetching + 1) * self._largest <= self.limit

    def finished(self) -> None:
        """A chunk that had its turn ended (delivered, failed or cancelled)."""
        self.fetching -= 1
        self._wake()

    def _wake(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def add(self, group: str, index: int, high: int, records: R) -> list[tuple[int, R]]:
        """Accept chunk `index` of `group` (with the highest article number it covers);
        return the (high, records) chunks now releasable, in order.
        A chunk delivered twice (a retry after a late failure) is ignored."""
        expected = self._next.setdefault(group, 0)
        held = self._held.setdefault(group, {})
        if index < expected or index in held:
            return []
        if self.stopped(group, index):
            self._dropped[group] = self._dropped.get(group, 0) + len(records)
            return []
        size = self.measure(records)
        self._largest = max(self._largest, size)
        held[index] = (high, records, size)
        self.held_bytes += size
        released = []
        while expected in held:
            chunk_high, chunk_records, chunk_size = held.pop(expected)
            self.held_bytes -= chunk_size
            released.append((chunk_high, chunk_records))
            expected += 1
        self._next[group] = expected
        self.peak_bytes = max(self.peak_bytes, self.held_bytes)
        self._wake()
        return released

    def failed(self, group: str, index: int) -> None:
        """Chunk `index` failed: drop what waits after it, skip the chunks after it."""
        self._stop[group] = min(index, self._stop.get(group, index))
        held = self._held.get(group, {})
        for later in [i for i in held if i > index]:
            _, records, size = held.pop(later)
            self.held_bytes -= size
            self._dropped[group] = self._dropped.get(group, 0) + len(records)
        self._wake()

    def held_back(self) -> dict[str, int]:
        """Records per group that waited behind a missing (failed) chunk."""
        counts = dict(self._dropped)
        for group, held in self._held.items():
            if held:
                counts[group] = counts.get(group, 0) + sum(len(records) for _, records, _ in held.values())
        return counts
