"""What `mail.fetch` stored, per account and folder, in the run's state DB.

Order of writes for one batch (the crash-safety argument):
1. `begin` records the batch as pending (its tokens and the store's mark) and commits;
2. the store writes and fsyncs the messages;
3. `finish` records each message as stored, clears pending, and commits.
A crash before 3 leaves a pending batch: the next run asks the store which of its
messages are on disk (Maildir: by the source id in the file name) or cuts the
torn tail off (mbox: truncate to the mark), records those, and fetches the rest.
So a message is never stored twice and never recorded without being stored.

Each row keeps a digest of the message's header block and size, so when a folder's
UIDVALIDITY changes the messages already stored are recognised by their headers (one
FETCH of headers, no bodies) and re-recorded under their new UIDs instead of being
fetched twice. A message is identified by (account, folder, token): the UIDL for
POP3, the UID for IMAP (valid together with the folder's UIDVALIDITY)."""

from __future__ import annotations

import functools
import hashlib
import json
from collections import Counter
from collections.abc import Iterable

from xfer.mailbox_store.stores import header_block
from xfer.state import StateStore

_NAMESPACE = "mail_fetch"
_VERSION = 2
_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS mail_fetch_folders (
        id INTEGER PRIMARY KEY, account TEXT NOT NULL, folder TEXT NOT NULL, validity INTEGER, pending TEXT,
        UNIQUE (account, folder))""",
    """CREATE TABLE IF NOT EXISTS mail_fetch_messages (
        folder_id INTEGER NOT NULL, token TEXT NOT NULL, digest TEXT NOT NULL,
        PRIMARY KEY (folder_id, token)) WITHOUT ROWID""",
]
#: Version 1 kept the account (a URL and a path) and the folder in every message
#: row, twice over with its index: three times the bytes, and a third of the SQLite
#: time of recording a batch. Its rows move to version 2 as they are.
_FROM_VERSION_1 = [
    "ALTER TABLE mail_fetch_folders RENAME TO mail_fetch_folders_v1",
    "ALTER TABLE mail_fetch_messages RENAME TO mail_fetch_messages_v1",
    *_SCHEMA,
    """INSERT INTO mail_fetch_folders (account, folder, validity, pending)
        SELECT account, folder, validity, pending FROM mail_fetch_folders_v1""",
    """INSERT INTO mail_fetch_messages (folder_id, token, digest)
        SELECT f.id, m.token, m.digest FROM mail_fetch_messages_v1 AS m
        JOIN mail_fetch_folders AS f ON f.account = m.account AND f.folder = m.folder""",
    "DROP TABLE mail_fetch_messages_v1",
    "DROP TABLE mail_fetch_folders_v1",
]


#: Rows per INSERT of `Ledger.finish` (3 bound values a row: far under SQLite's 32,766).
_ROWS_PER_INSERT = 250


def _upgrade(state: StateStore) -> None:
    """Move a version 1 ledger to version 2, once: the version is read again inside
    the write transaction, so processes of one run opening the file together do it once."""
    db = state.db
    if not state.has_version(_NAMESPACE, 1):
        return
    db.commit()  # BEGIN IMMEDIATE needs no transaction open
    db.execute("BEGIN IMMEDIATE")
    try:
        if state.has_version(_NAMESPACE, 1):
            for statement in _FROM_VERSION_1:
                db.execute(statement)
            db.execute("UPDATE schema_version SET version = ? WHERE namespace = ?", (_VERSION, _NAMESPACE))
        db.commit()
    except BaseException:
        db.rollback()
        raise


@functools.lru_cache(maxsize=16)
def _insert(rows: int) -> str:
    """INSERT OR REPLACE of `rows` messages in one statement (made once per row count)."""
    return (
        "INSERT OR REPLACE INTO mail_fetch_messages (folder_id, token, digest) VALUES "
        + ", ".join(["(?, ?, ?)"] * rows)
    )


def digest(raw_or_header: bytes, size: int) -> str:
    """Recognises a message again: its header block (LF form) and its server size."""
    return header_digest(header_block(raw_or_header), size)


def header_digest(head: bytes, size: int) -> str:
    """`digest` of a message whose header block (`stores.header_block`) is at hand."""
    return hashlib.sha256(head).hexdigest()[:32] + f":{size}"


class Ledger:
    def __init__(self, state: StateStore, account: str, folder: str) -> None:
        _upgrade(state)
        state.ensure_schema(_NAMESPACE, _VERSION, _SCHEMA)
        self.state = state
        key = (account, folder)
        state.execute("INSERT OR IGNORE INTO mail_fetch_folders (account, folder) VALUES (?, ?)", key)
        #: The folder's row: what every message row refers to.
        self.id: int = state.execute(
            "SELECT id FROM mail_fetch_folders WHERE account = ? AND folder = ?", key
        ).fetchone()[0]

    def _folder(self, column: str) -> object:
        row = self.state.execute(f"SELECT {column} FROM mail_fetch_folders WHERE id = ?", (self.id,)).fetchone()
        return row[0] if row else None

    @property
    def validity(self) -> int | None:
        return self._folder("validity")  # type: ignore[return-value]

    def set_validity(self, validity: int) -> None:
        self.state.execute("UPDATE mail_fetch_folders SET validity = ? WHERE id = ?", (validity, self.id))
        self.state.commit()

    def stored(self) -> set[str]:
        rows = self.state.execute("SELECT token FROM mail_fetch_messages WHERE folder_id = ?", (self.id,))
        return {token for (token,) in rows}

    @property
    def pending(self) -> tuple[list[str], int] | None:
        """(tokens, store mark) of a batch a crashed run did not finish, or None."""
        text = self._folder("pending")
        if not text:
            return None
        data = json.loads(str(text))
        return list(data["tokens"]), int(data["mark"])

    def begin(self, tokens: list[str], mark: int) -> None:
        self._set_pending(json.dumps({"tokens": tokens, "mark": mark}))

    def finish(self, stored: Iterable[tuple[str, str]]) -> None:
        """Record (token, digest) pairs as stored and clear pending, in one commit.

        A batch's rows go in one multi-row INSERT, not `executemany`: that steps the
        statement once a row, and the sqlite3 module lets go of the GIL and takes it
        back at every step, so with session threads parsing and writing beside the
        event loop each of a batch's 100 rows waited for the GIL again."""
        folder_id = self.id
        values = [value for token, digest in stored for value in (folder_id, token, digest)]
        for start in range(0, len(values), 3 * _ROWS_PER_INSERT):
            chunk = values[start:start + 3 * _ROWS_PER_INSERT]
            self.state.db.execute(_insert(len(chunk) // 3), chunk)
        self._set_pending(None)

    def _set_pending(self, text: str | None) -> None:
        self.state.execute("UPDATE mail_fetch_folders SET pending = ? WHERE id = ?", (text, self.id))
        self.state.commit()

    def forget(self, tokens: Iterable[str]) -> None:
        """Drop records of messages deleted from the server."""
        self.state.db.executemany(
            "DELETE FROM mail_fetch_messages WHERE folder_id = ? AND token = ?", [(self.id, token) for token in tokens]
        )
        self.state.commit()

    def resync(self, validity: int, server: dict[str, str]) -> int:
        """The folder's UIDVALIDITY changed: keep as stored those server messages
        (token -> digest) whose digest matches one stored before, drop the old
        records, set the new validity. Returns how many were recognised."""
        old = Counter(
            value for (value,) in self.state.execute(
                "SELECT digest FROM mail_fetch_messages WHERE folder_id = ?", (self.id,)
            )
        )
        kept = []
        for token, value in server.items():  # in UID order: equal digests pair up in order
            if old[value] > 0:
                old[value] -= 1
                kept.append((self.id, token, value))
        self.state.execute("DELETE FROM mail_fetch_messages WHERE folder_id = ?", (self.id,))
        self.state.db.executemany("INSERT INTO mail_fetch_messages (folder_id, token, digest) VALUES (?, ?, ?)", kept)
        self.set_validity(validity)  # commits
        return len(kept)
