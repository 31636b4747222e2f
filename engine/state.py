"""The SQLite state store: what was mirrored, high-water marks, run history.

One file (WAL mode) per job file by default (`.xfer/state.db` beside it). Job kinds
declare their tables with `ensure_schema(namespace, version, statements)`; each
namespace has its own version row, so kinds evolve independently. Writes are
committed in batches (`commit_soon`) and at the end of a run: an interrupted run
loses at most the last second of records, and the kinds' checks against the local
files (size and mtime) cover that gap. Once an item has ended, its transaction is
committed within that second even when no more items end (a timer): the processes of
one run (`--processes`) write the same file, and one that waits for the write lock
waits with its event loop stopped. (A process about to wait for another's connection
lease commits at once: `Scheduler._commit_states`.)"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

_COMMIT_INTERVAL = 1.0

_VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (namespace TEXT PRIMARY KEY, version INTEGER NOT NULL)"
_CORE_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        started REAL NOT NULL,
        finished REAL,
        exit_code INTEGER,
        summary TEXT
    )""",
]


#: How long opening a state file waits for another process that is opening it too.
_OPEN_PATIENCE = 10.0


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL. SQLite answers "database is locked" at once, without waiting
    (no busy handler for it), when another process switches the same new file at the
    same moment — the processes of `xfer run --processes` starting together: 1 start
    in 40 failed. So retry for a while."""
    deadline = time.monotonic() + _OPEN_PATIENCE
    while True:
        try:
            db.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class StateStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(str(path), isolation_level="DEFERRED", check_same_thread=False)
        _use_wal(self.db)
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=10000")
        self._last_commit = time.monotonic()
        self._due: asyncio.TimerHandle | None = None
        self._flushers: list[Callable[[], None]] = []
        with self.db:
            self.db.execute(_VERSION_TABLE)
        self.ensure_schema("core", 1, _CORE_SCHEMA)

    def has_version(self, namespace: str, version: int) -> bool:
        """Whether a namespace's tables are at `version` (a kind's upgrade asks first)."""
        row = self.db.execute("SELECT version FROM schema_version WHERE namespace = ?", (namespace,)).fetchone()
        return row is not None and row[0] == version

    def ensure_schema(self, namespace: str, version: int, statements: Iterable[str]) -> None:
        """Create a namespace's tables once; refuse a database newer than this code."""
        row = self.db.execute("SELECT version FROM schema_version WHERE namespace = ?", (namespace,)).fetchone()
        if row and row[0] > version:
            raise RuntimeError(f"{self.path}: state schema {namespace!r} is version {row[0]}, newer than this xfer")
        if row and row[0] == version:
            return
        with self.db:
            for statement in statements:
                self.db.execute(statement)
            self.db.execute(
                "INSERT INTO schema_version (namespace, version) VALUES (?, ?) "
                "ON CONFLICT(namespace) DO UPDATE SET version = excluded.version",
                (namespace, version),
            )

    def execute(self, sql: str, params: Iterable[Any] = ()) -> sqlite3.Cursor:
        return self.db.execute(sql, tuple(params))

    def on_commit(self, flush: Callable[[], None]) -> None:
        """Call `flush` before every commit: a kind that batches its writes (one
        executemany per batch) gets them into the same transaction."""
        self._flushers.append(flush)

    def commit_soon(self) -> None:
        """Commit if the last commit is over a second old, else when it will be (one
        transaction batches many small writes)."""
        now = time.monotonic()
        if now - self._last_commit >= _COMMIT_INTERVAL:
            self.commit()
        elif self._due is None:
            self._due = asyncio.get_running_loop().call_later(self._last_commit + _COMMIT_INTERVAL - now, self.commit)

    def commit(self) -> None:
        if self._due is not None:
            self._due.cancel()
            self._due = None
        for flush in self._flushers:
            flush()
        self.db.commit()
        self._last_commit = time.monotonic()

    def record_run(self, started: float, exit_code: int, summary: dict[str, Any]) -> None:
        with self.db:
            self.db.execute(
                "INSERT INTO runs (started, finished, exit_code, summary) VALUES (?, ?, ?, ?)",
                (started, time.time(), exit_code, json.dumps(summary)),
            )

    def close(self) -> None:
        self.commit()
        self.db.close()
