"""What `nntp.scan` remembers in the state DB: high-water marks per job, server and
group (two jobs with different filters on one group each keep their own),
LIST ACTIVE answers per pattern (with a TTL), and the committed size of each JSONL
output (so a run that died after appending but before saving its marks is undone)."""

from __future__ import annotations

import json
import time

from xfer.state import StateStore

_NAMESPACE = "nntp"
_VERSION = 1
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS nntp_marks (
        job TEXT NOT NULL, server TEXT NOT NULL, grp TEXT NOT NULL, high INTEGER NOT NULL,
        updated REAL NOT NULL, PRIMARY KEY (job, server, grp))""",
    """CREATE TABLE IF NOT EXISTS nntp_active (
        server TEXT NOT NULL, pattern TEXT NOT NULL, groups TEXT NOT NULL, fetched REAL NOT NULL,
        PRIMARY KEY (server, pattern))""",
    """CREATE TABLE IF NOT EXISTS nntp_outputs (
        path TEXT PRIMARY KEY, size INTEGER NOT NULL)""",
]


class NewsState:
    def __init__(self, state: StateStore, job: str, server: str) -> None:
        self.state = state
        self.job = job
        self.server = server
        state.ensure_schema(_NAMESPACE, _VERSION, _SCHEMA)

    def mark(self, group: str) -> int | None:
        row = self.state.execute(
            "SELECT high FROM nntp_marks WHERE job = ? AND server = ? AND grp = ?", (self.job, self.server, group)
        ).fetchone()
        return int(row[0]) if row else None

    def set_marks(self, marks: dict[str, int]) -> None:
        now = time.time()
        for group, high in marks.items():
            self.state.execute(
                "INSERT INTO nntp_marks (job, server, grp, high, updated) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(job, server, grp) DO UPDATE SET high = excluded.high, updated = excluded.updated",
                (self.job, self.server, group, high, now),
            )

    def cached_groups(self, pattern: str, ttl: float) -> list[str] | None:
        row = self.state.execute(
            "SELECT groups, fetched FROM nntp_active WHERE server = ? AND pattern = ?", (self.server, pattern)
        ).fetchone()
        if row is None or time.time() - row[1] > ttl:
            return None
        return list(json.loads(row[0]))

    def cache_groups(self, pattern: str, groups: list[str]) -> None:
        self.state.execute(
            "INSERT INTO nntp_active (server, pattern, groups, fetched) VALUES (?, ?, ?, ?) "
            "ON CONFLICT(server, pattern) DO UPDATE SET groups = excluded.groups, fetched = excluded.fetched",
            (self.server, pattern, json.dumps(groups), time.time()),
        )
        self.state.commit()

    def output_size(self, path: str) -> int | None:
        row = self.state.execute("SELECT size FROM nntp_outputs WHERE path = ?", (path,)).fetchone()
        return int(row[0]) if row else None

    def set_output_size(self, path: str, size: int) -> None:
        self.state.execute(
            "INSERT INTO nntp_outputs (path, size) VALUES (?, ?) ON CONFLICT(path) DO UPDATE SET size = excluded.size",
            (path, size),
        )

    def commit(self) -> None:
        self.state.commit()
