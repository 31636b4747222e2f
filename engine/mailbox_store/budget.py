"""One memory budget for every mail.fetch job of a run: bytes of messages fetched
(or being fetched) and not yet stored.

Without it each folder bounded itself (AHEAD batches of up to 16 MiB), so 20 accounts
could hold 20 x 8 x 16 MiB. A batch now reserves its server-reported size before it
is fetched and gives it back once stored. Reservations of one folder are taken in
batch order, so whoever holds budget and waits for its turn to be stored waits only
for batches that hold budget too: no deadlock. A message larger than the whole
budget goes alone. The budget belongs to the running event loop (one run)."""

from __future__ import annotations

import asyncio
import weakref

#: Bytes all mail.fetch jobs of a run may hold fetched and not yet stored.
FETCH_MEMORY = 64 * 1024 * 1024


class MemoryBudget:
    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0  # the most ever reserved: for the report and the tests
        self._changed = asyncio.Condition()

    def __repr__(self) -> str:
        return f"<MemoryBudget {self.used}/{self.limit} bytes, peak {self.peak}>"

    async def take(self, nbytes: int) -> int:
        """Reserve `nbytes` (at most the whole budget), waiting for room; what was taken."""
        nbytes = min(nbytes, self.limit)
        async with self._changed:
            await self._changed.wait_for(lambda: self.used + nbytes <= self.limit)
            self.used += nbytes
            self.peak = max(self.peak, self.used)
        return nbytes

    async def give(self, nbytes: int) -> None:
        async with self._changed:
            self.used -= nbytes
            self._changed.notify_all()


def divide(processes: int) -> None:
    """This process is one of `processes` of one run (`xfer run --processes`): its
    budget is its part of the run's, so that the run's holds in sum."""
    global FETCH_MEMORY
    FETCH_MEMORY = max(1, FETCH_MEMORY // processes)


_budgets: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MemoryBudget] = weakref.WeakKeyDictionary()


def run_budget() -> MemoryBudget:
    """The budget of the running loop (one `xfer run`), made on first use."""
    loop = asyncio.get_running_loop()
    budget = _budgets.get(loop)
    if budget is None:
        budget = _budgets[loop] = MemoryBudget(FETCH_MEMORY)
    return budget
