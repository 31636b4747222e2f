"""Processes that share a state file (`xfer run --processes`). Opening the same new
file at once: SQLite refuses the switch to WAL with "database is locked" without
waiting, and 1 start in 40 failed (its shard's jobs with it) before StateStore retried.
Writing it: a transaction left open holds the write lock from the other processes."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from xfer.state import _COMMIT_INTERVAL, StateStore


def test_many_processes_open_one_new_state_file(tmp_path: Path) -> None:
    failed = 0
    for attempt in range(300):
        path = tmp_path / f"state-{attempt}.db"
        children = []
        for _ in range(2):
            pid = os.fork()
            if pid == 0:
                code = 1
                try:
                    StateStore(path).close()
                    code = 0
                finally:
                    os._exit(code)
            children.append(pid)
        for pid in children:
            failed += os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) != 0
    assert failed == 0


def test_an_open_transaction_is_committed_within_the_interval_without_more_items(tmp_path: Path) -> None:
    """A process that wrote and then only waits (for another process's connection) must
    not keep the write lock: the other, writing the same file, waits for it with its
    event loop stopped."""
    path = tmp_path / "state.db"
    store = StateStore(path)
    store.execute("CREATE TABLE t (x INTEGER)")
    store.commit()
    other = sqlite3.connect(str(path), timeout=0)

    async def write_then_wait() -> None:
        store.commit_soon()  # an item ended just now: nothing to commit yet
        store.execute("INSERT INTO t VALUES (1)")  # the next item's write
        store.commit_soon()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            other.execute("INSERT INTO t VALUES (2)")  # held: the transaction is open
        await asyncio.sleep(_COMMIT_INTERVAL + 0.2)  # no more items end
        other.execute("INSERT INTO t VALUES (2)")
        other.commit()

    asyncio.run(write_then_wait())
    assert other.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
    store.close()
