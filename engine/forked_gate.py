"""Per-host limits and the global bound held across the processes of one forked run.

`xfer run --processes` deals a host's jobs over several processes when they are many
(twenty mailboxes on one IMAP server). A static split of the host's limit (4 and 4)
leaves a share idle once its jobs are done while the other share still has work;
here every process may use the whole limit while the others leave it room. Each open
connection holds a lease counted in a table in shared memory, mapped before the fork.

Fair shares across processes, as `engine/workers.py` keeps them inside one: while
another process waits for a lease on a host, a process takes no new lease beyond its
share (the limit over the processes that want the host). While one waits that holds
less than its share, a process holding more hands a connection back after its item,
and none keeps a connection of the host idle. One waiting at its share is handed
nothing: both shares of a split mirror wanted more than their half, and each closed
every connection its workers let go for a lease the other could not take (a login per
directory, eight times the run's time).

A process the plan deals a host's jobs to counts as waiting for it from the fork
(`expect`), not from its first opener's try: its openers ask one by one as its jobs
start, and the first process to start took the whole limit (or, between two of the
other's openers, the rest of it) and kept it while its first items ran (twenty
mailboxes: six sessions against two, the processes ending 200 ms apart). It stops
counting so once it has held its share, has closed a connection of the host (it
wanted no more than it had), or `settle` seconds after its first lease, so one that
wants less than its share (a lone big mailbox) does not cap the others for long.

The table has a row per endpoint (found by a 64-bit hash of it, linear probing) and
one for the run's global bound; a row holds the hash, the limit a refusal (421) left,
and per process its leases and its waiting openers (the global row's: all of them).
Leases are taken under a POSIX record lock on the table's file, which is per process
and so needs no lock object shared over the fork; the counts read after every item
are read without it (a hint, written by one process each). The parent zeroes a
process's columns when it has ended, so a child that crashed gives its leases back."""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import hashlib
import math
import mmap
import os
import tempfile
from collections.abc import Iterator

#: Endpoints the table holds; past that, endpoints share rows (a stricter bound, never a looser one).
ROWS = 1024
#: The global bound's row key (an endpoint's key is never 0 or 1).
_GLOBAL_KEY = 1
_KEY, _SHRUNK, _COUNTS = 0, 1, 2


class SharedHostGate:
    """The leases of one forked run (`engine/pool.py`'s `HostGate`), for `processes`
    processes and a global bound of `max_open` connections. `join` in each child."""

    #: Seconds between a waiting opener's tries (first, most): a try is two system calls.
    poll = (0.002, 0.02)
    #: Seconds after its first lease of a host that a process counts as waiting for it at most.
    settle = 0.2

    def __init__(self, processes: int, max_open: int) -> None:
        self.processes = processes
        self.max_open = max_open
        self.column = -1
        self._width = _COUNTS + 2 * processes  # key, shrunk, leases[p], waiting[p]
        size = (ROWS + 1) * self._width * 8
        self._fd = os.memfd_create("xfer-gate") if hasattr(os, "memfd_create") else _temporary_fd()
        os.ftruncate(self._fd, size)
        self._table = memoryview(mmap.mmap(self._fd, size)).cast("q")
        self._table[_KEY] = _GLOBAL_KEY  # row 0
        self._rows: dict[str, int] = {}
        self._waiting: dict[str, int] = {}
        #: Per endpoint the processes that count as waiting for it until they settle.
        self._expected: dict[str, set[int]] = {}

    def join(self, column: int) -> None:
        """In child `column`: the leases taken and the openers waiting from now on are
        this process's."""
        self.column = column
        self._waiting = {}

    def expect(self, endpoint: str, columns: list[int]) -> None:
        """Before the fork: the processes `columns` will want `endpoint` (and so the
        global bound). Each counts as a waiting opener until it settles (see above)."""
        with self._locked():
            row = self._row(endpoint)
            self._expected[endpoint] = set(columns)
            for column in columns:
                self._table[row + _COUNTS + self.processes + column] = 1
                self._table[_COUNTS + self.processes + column] = 1

    # -- HostGate ----------------------------------------------------------------

    async def try_enter(self, endpoint: str, limit: int) -> bool:
        with self._locked():
            row = self._row(endpoint)
            if not self._may_take(row, limit) or not self._may_take(0, self.max_open):
                return False
            self._table[row + _COUNTS + self.column] += 1
            self._table[_COUNTS + self.column] += 1
            if self._leases(row)[self.column] >= self._share(row, self._limit(row, limit)):
                self._settle(endpoint)
            elif self._leases(row)[self.column] == 1 and self.column in self._expected.get(endpoint, ()):
                asyncio.get_running_loop().call_later(self.settle, self._settle, endpoint)
        return True

    def leave(self, endpoint: str) -> None:
        with self._locked():
            self._table[self._row(endpoint) + _COUNTS + self.column] -= 1
            self._table[_COUNTS + self.column] -= 1
        self._settle(endpoint)

    def shrink(self, endpoint: str) -> None:
        with self._locked():
            row = self._row(endpoint)
            open_now = max(1, sum(self._leases(row)) - 1)
            if not self._table[row + _SHRUNK] or open_now < self._table[row + _SHRUNK]:
                self._table[row + _SHRUNK] = open_now

    def waiting(self, endpoint: str, count: int) -> None:
        row = self._rows.get(endpoint)
        if row is None:
            return
        self._waiting[endpoint] = count
        expected_here = self.column in self._expected.get(endpoint, ())
        expected_anywhere = any(self.column in columns for columns in self._expected.values())
        self._table[row + _COUNTS + self.processes + self.column] = max(count, expected_here)
        self._table[_COUNTS + self.processes + self.column] = max(sum(self._waiting.values()), expected_anywhere)

    def _settle(self, endpoint: str) -> None:
        """This process no longer counts as waiting for `endpoint` unless it does."""
        columns = self._expected.get(endpoint)
        if columns is not None and self.column in columns:
            columns.discard(self.column)
            self.waiting(endpoint, self._waiting.get(endpoint, 0))

    def others_waiting(self, endpoint: str, limit: int) -> bool:
        row = self._rows.get(endpoint)
        if row is None:
            return False
        if self._others_short(row, limit):
            return True
        return sum(self._leases(0)) >= self.max_open and self._others_short(0, self.max_open)

    def over_share(self, endpoint: str, limit: int) -> bool:
        row = self._rows.get(endpoint)
        return (
            row is not None and self._others_short(row, limit)
            and self._leases(row)[self.column] > self._share(row, self._limit(row, limit))
        )

    # -- the parent ----------------------------------------------------------------

    def forget(self, column: int) -> None:
        """Process `column` has ended: whatever it still counted is given back."""
        with self._locked():
            for row in range(0, (ROWS + 1) * self._width, self._width):
                self._table[row + _COUNTS + column] = 0
                self._table[row + _COUNTS + self.processes + column] = 0

    # -- the table -----------------------------------------------------------------

    def _may_take(self, row: int, limit: int) -> bool:
        """Below the limit, and (while another process waits) below this one's share."""
        limit = self._limit(row, limit)
        leases = self._leases(row)
        if sum(leases) >= limit:
            return False
        return not self._others_wait(row) or leases[self.column] < self._share(row, limit)

    def _share(self, row: int, limit: int) -> int:
        wanting = sum(1 for leases, waiting in zip(self._leases(row), self._waiters(row)) if leases or waiting)
        return math.ceil(limit / max(1, wanting))

    def _limit(self, row: int, limit: int) -> int:
        """`limit`, or less where a refusal shrank it."""
        shrunk = self._table[row + _SHRUNK]
        return shrunk if shrunk and shrunk < limit else limit

    def _others_wait(self, row: int) -> bool:
        return any(count for column, count in enumerate(self._waiters(row)) if column != self.column)

    def _others_short(self, row: int, limit: int) -> bool:
        """Another process waits while holding less than its share: one that may take
        a lease given back here."""
        share = self._share(row, self._limit(row, limit))
        return any(
            waiting and leases < share
            for column, (leases, waiting) in enumerate(zip(self._leases(row), self._waiters(row)))
            if column != self.column
        )

    def _leases(self, row: int) -> memoryview:
        return self._table[row + _COUNTS : row + _COUNTS + self.processes]

    def _waiters(self, row: int) -> memoryview:
        return self._table[row + _COUNTS + self.processes : row + _COUNTS + 2 * self.processes]

    def _row(self, endpoint: str) -> int:
        """The endpoint's row (claimed on first use; under the lock)."""
        row = self._rows.get(endpoint)
        if row is None:
            digest = hashlib.blake2b(endpoint.encode(), digest_size=8).digest()
            key = int.from_bytes(digest, "little", signed=True)
            key = key if key not in (0, _GLOBAL_KEY) else 2
            home = int.from_bytes(digest, "little") % ROWS
            for probe in range(ROWS):
                row = (1 + (home + probe) % ROWS) * self._width
                if self._table[row + _KEY] in (0, key):
                    self._table[row + _KEY] = key
                    break
            else:
                row = (1 + home) * self._width
            self._rows[endpoint] = row
        return row

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fcntl.lockf(self._fd, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.lockf(self._fd, fcntl.LOCK_UN)


def _temporary_fd() -> int:
    """A file for the table where memfd_create is missing (not Linux)."""
    with tempfile.TemporaryFile() as file:
        return os.dup(file.fileno())
