"""The SQLite output: tables `articles` and `threads`, and an FTS5 index over subject,
sender and body (`articles_fts`, kept in step by triggers).

Articles are keyed by (server, group, number) and upserted, so a run redone after a
crash rewrites rows instead of duplicating them. A run's rows are committed once, at
its end, before its high-water marks; a body already stored is kept when a later
scan of the same article did not fetch one."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from xfer.news.threads import ThreadInfo

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS articles (
        id INTEGER PRIMARY KEY,
        server TEXT NOT NULL, grp TEXT NOT NULL, number INTEGER NOT NULL,
        message_id TEXT, subject TEXT, sender TEXT, date TEXT, refs TEXT,
        bytes INTEGER, lines INTEGER, xref TEXT, headers TEXT,
        body TEXT, excerpt TEXT, thread_id TEXT, depth INTEGER,
        UNIQUE (server, grp, number))""",
    "CREATE INDEX IF NOT EXISTS articles_message_id ON articles (message_id)",
    "CREATE INDEX IF NOT EXISTS articles_thread ON articles (thread_id)",
    """CREATE TABLE IF NOT EXISTS threads (
        thread_id TEXT PRIMARY KEY, subject TEXT, articles INTEGER NOT NULL)""",
    """CREATE VIRTUAL TABLE IF NOT EXISTS articles_fts USING fts5(
        subject, sender, body, content='articles', content_rowid='id')""",
    """CREATE TRIGGER IF NOT EXISTS articles_ai AFTER INSERT ON articles BEGIN
        INSERT INTO articles_fts (rowid, subject, sender, body) VALUES (new.id, new.subject, new.sender, new.body);
    END""",
    """CREATE TRIGGER IF NOT EXISTS articles_ad AFTER DELETE ON articles BEGIN
        INSERT INTO articles_fts (articles_fts, rowid, subject, sender, body)
        VALUES ('delete', old.id, old.subject, old.sender, old.body);
    END""",
    """CREATE TRIGGER IF NOT EXISTS articles_au AFTER UPDATE OF subject, sender, body ON articles BEGIN
        INSERT INTO articles_fts (articles_fts, rowid, subject, sender, body)
        VALUES ('delete', old.id, old.subject, old.sender, old.body);
        INSERT INTO articles_fts (rowid, subject, sender, body) VALUES (new.id, new.subject, new.sender, new.body);
    END""",
]

_UPSERT = """INSERT INTO articles (server, grp, number, message_id, subject, sender, date, refs,
        bytes, lines, xref, headers, body, excerpt)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
    ON CONFLICT (server, grp, number) DO UPDATE SET
        message_id = excluded.message_id, subject = excluded.subject, sender = excluded.sender,
        date = excluded.date, refs = excluded.refs, bytes = excluded.bytes, lines = excluded.lines,
        xref = excluded.xref, headers = excluded.headers,
        body = COALESCE(excluded.body, articles.body), excerpt = COALESCE(excluded.excerpt, articles.excerpt)"""


def connect(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(str(path))
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("PRAGMA busy_timeout=10000")
    return db


class SqliteOutput:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = connect(path)
        with self.db:
            for statement in SCHEMA:
                self.db.execute(statement)
        self.written = 0

    def write(self, records: Iterable[dict[str, Any]]) -> None:
        rows = [_row(record) for record in records]
        self.db.executemany(_UPSERT, rows)
        self.written += len(rows)

    def thread_input(self) -> Iterator[tuple[str, list[str], str]]:
        """Every stored article, for threading across runs (the current run's rows included)."""
        for message_id, refs, subject in self.db.execute(
            "SELECT message_id, refs, subject FROM articles ORDER BY server, grp, number"
        ):
            yield message_id or "", (refs or "").split(), subject or ""

    def store_threads(self, places: dict[str, ThreadInfo]) -> None:
        self.db.execute("UPDATE articles SET thread_id = NULL, depth = NULL")
        self.db.executemany(
            "UPDATE articles SET thread_id = ?, depth = ? WHERE message_id = ?",
            ((info.thread_id, info.depth, message_id) for message_id, info in places.items()),
        )
        self.db.execute("DELETE FROM threads")
        self.db.execute(
            """INSERT INTO threads (thread_id, subject, articles)
            SELECT thread_id, (SELECT subject FROM articles AS a WHERE a.thread_id = t.thread_id
                               ORDER BY depth, number LIMIT 1), COUNT(*)
            FROM articles AS t WHERE thread_id IS NOT NULL GROUP BY thread_id"""
        )

    def delete_killed(self, killed: set[str]) -> int:
        """Drop stored articles of killed threads (their ids or replies to them)."""
        doomed = [
            row_id
            for row_id, message_id, refs in self.db.execute("SELECT id, message_id, refs FROM articles")
            if message_id in killed or killed.intersection((refs or "").split())
        ]
        self.db.executemany("DELETE FROM articles WHERE id = ?", ((row_id,) for row_id in doomed))
        return len(doomed)

    def commit(self) -> None:
        self.db.commit()

    def close(self) -> None:
        self.db.close()


def _row(record: dict[str, Any]) -> tuple[Any, ...]:
    excerpt = record.get("excerpt")
    return (
        record["server"],
        record["group"],
        record["number"],
        record.get("message_id"),
        record.get("subject"),
        record.get("from"),
        record.get("date"),
        " ".join(record.get("references", ())),
        record.get("bytes"),
        record.get("lines"),
        record.get("xref"),
        json.dumps(record["headers"], ensure_ascii=False) if record.get("headers") else None,
        record.get("body"),
        "\n".join(excerpt) if excerpt is not None else None,
    )

