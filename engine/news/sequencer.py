"""Releases chunk results in article order, whatever order the chunks finish in.

Chunks of one group run on several connections at once; outputs and high-water
marks must still advance in article order and only over what was written without a
gap, so that a failed chunk is refetched by the next run and nothing is skipped."""

from __future__ import annotations

from collections.abc import Sized
from typing import Generic, TypeVar

R = TypeVar("R", bound=Sized)  # a chunk's records: dicts, or lines already encoded


class Sequencer(Generic[R]):
    def __init__(self) -> None:
        self._next: dict[str, int] = {}
        self._held: dict[str, dict[int, tuple[int, R]]] = {}

    def add(self, group: str, index: int, high: int, records: R) -> list[tuple[int, R]]:
        """Accept chunk `index` of `group` (with the highest article number it covers);
        return the (high, records) chunks now releasable, in order.
        A chunk delivered twice (a retry after a late failure) is ignored."""
        expected = self._next.setdefault(group, 0)
        held = self._held.setdefault(group, {})
        if index < expected or index in held:
            return []
        held[index] = (high, records)
        released = []
        while expected in held:
            released.append(held.pop(expected))
            expected += 1
        self._next[group] = expected
        return released

    def held_back(self) -> dict[str, int]:
        """Records per group waiting behind a missing (failed) chunk."""
        return {
            group: sum(len(records) for _, records in held.values()) for group, held in self._held.items() if held
        }
