"""One simulated user's session: the fixed opening, `commands` steps drawn by weight
with think time between them, and the logout. Every command is timed and its reply
counted (`SessionStats`); a refusal (NO, BAD, -ERR) is counted and the session goes
on, as a mail client would; a lost connection (BYE, a reset, a timeout) ends it.

IMAP: SELECT, then UID SEARCH ALL (the session's view of the mailbox: the UIDs its
later steps pick from), then steps among `fetch_headers` (UID FETCH BODY.PEEK[HEADER]),
`fetch_body` (UID FETCH BODY.PEEK[]), `search` (UID SEARCH ALL again: a fresh view),
`store` (UID STORE +FLAGS.SILENT of `store_flag`) and `expunge` (UID STORE \\Deleted
+ UID EXPUNGE of that UID only, timed together), then LOGOUT.
POP3: STAT (the session's view), then steps among `stat`, `list`, `retr` and `dele`,
then QUIT (which commits the DELEs).

With a journal, each step that reads or changes a message writes one JSON line
(user, command, UID or number, and for bodies the Message-ID and the SHA-256 of each
MIME part, line ends normalised) so a test or an operator can check the server's state
against what the sessions did."""

from __future__ import annotations

import abc
import asyncio
import json
import random
import time
from collections.abc import Awaitable
from typing import IO, Any, TypeVar

from xfer.mail.compare import fingerprint
from xfer.mail.sessions_stats import SessionStats
from xfer.protocols.imap import ImapConnection
from xfer.protocols.pop3 import Pop3Connection

T = TypeVar("T")

IMAP_STEPS = ("fetch_headers", "fetch_body", "search", "store", "expunge")
POP3_STEPS = ("stat", "list", "retr", "dele")
#: Replies after which the session cannot go on (besides a broken connection).
_FATAL = ("BYE", "timeout")


class SessionEnded(Exception):
    """The connection is gone mid-scenario (the command's reply is already counted)."""


class Journal:
    """JSON lines of what the sessions did to messages (buffered; closed at the end)."""

    def __init__(self, out: IO[str]) -> None:
        self._out = out

    def write(self, **entry: Any) -> None:
        self._out.write(json.dumps(entry, separators=(",", ":")) + "\n")

    def close(self) -> None:
        self._out.close()


def body_entry(raw: bytes) -> dict[str, Any]:
    """What a journal says of a fetched message: its Message-ID and part digests."""
    prints = fingerprint(raw)
    message_id = next((value for name, value in prints.headers if name.lower() == "message-id"), None)
    return {"message_id": message_id, "parts": [part.sha256 for part in prints.parts]}


class Scenario(abc.ABC):
    """The shared part: timing, think time, weighted choice, the journal."""

    steps: tuple[str, ...] = ()

    def __init__(
        self, conn: ImapConnection | Pop3Connection, user: str, stats: SessionStats, rng: random.Random,
        weights: dict[str, float], commands: int, think_time: float, journal: Journal | None,
    ) -> None:
        self.conn, self.user, self.stats, self.rng = conn, user, stats, rng
        self.names = [name for name in self.steps if weights.get(name, 0) > 0]
        self.weights = [weights[name] for name in self.names]
        self.commands, self.think_time, self.journal = commands, think_time, journal

    async def timed(self, command: str, work: Awaitable[T]) -> T | None:
        """Run one command; None when the server refused it; SessionEnded when the
        connection is gone."""
        began = time.monotonic()
        try:
            result = await work
        except Exception as exc:  # noqa: BLE001 - every outcome is counted
            if self.stats.command(command, began, exc) in _FATAL or not self.conn.is_usable():
                raise SessionEnded(command) from exc
            return None
        self.stats.command(command, began)
        return result

    def note(self, command: str, **fields: Any) -> None:
        if self.journal is not None:
            self.journal.write(user=self.user, command=command, **fields)

    async def run(self) -> None:
        """The whole session after login; the connection is closed at the end."""
        await self.opening()
        for number in range(self.commands):
            if number and self.think_time:
                await asyncio.sleep(self.think_time)
            if self.names:
                await getattr(self, "step_" + self.rng.choices(self.names, self.weights)[0])()
        await self.leave()

    @abc.abstractmethod
    async def opening(self) -> None:
        """The fixed first commands after login: they give the session its view."""

    @abc.abstractmethod
    async def leave(self) -> None:
        """LOGOUT / QUIT."""


class ImapScenario(Scenario):
    steps = IMAP_STEPS
    conn: ImapConnection

    def __init__(self, store_flag: str, *args: Any) -> None:
        super().__init__(*args)
        self.store_flag = store_flag
        self.uids: list[int] = []

    def _pick(self) -> int | None:
        return self.rng.choice(self.uids) if self.uids else None

    async def opening(self) -> None:
        await self.timed("SELECT", self.conn.reselect())
        await self.step_search()

    async def step_search(self) -> None:
        uids = await self.timed("SEARCH", self.conn.search_uids())
        if uids is not None:
            self.uids = uids

    async def step_fetch_headers(self) -> None:
        uid = self._pick()
        if uid is not None and await self.timed("FETCH HEADER", self.conn.headers([uid])):
            self.note("FETCH HEADER", uid=uid)

    async def step_fetch_body(self) -> None:
        uid = self._pick()
        if uid is None:
            return
        for message in await self.timed("FETCH BODY", self.conn.fetch_messages([uid])) or ():
            if self.journal is not None:
                self.note("FETCH BODY", uid=message.uid, **body_entry(message.raw))

    async def step_store(self) -> None:
        uid = self._pick()
        if uid is not None and await self.timed("STORE", self._store(uid)):
            self.note("STORE", uid=uid, flag=self.store_flag)

    async def _store(self, uid: int) -> bool:
        await self.conn.store_flags([uid], self.store_flag)
        return True

    async def step_expunge(self) -> None:
        uid = self._pick()
        if uid is not None and await self.timed("EXPUNGE", self.conn.delete([str(uid)])):
            self.uids.remove(uid)
            self.note("EXPUNGE", uid=uid)

    async def leave(self) -> None:
        await self.timed("LOGOUT", self.conn.quit())


class Pop3Scenario(Scenario):
    steps = POP3_STEPS
    conn: Pop3Connection

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.numbers: list[int] = []

    def _pick(self) -> int | None:
        return self.rng.choice(self.numbers) if self.numbers else None

    async def opening(self) -> None:
        found = await self.timed("STAT", self.conn.stat())
        if found is not None:
            self.numbers = list(range(1, found[0] + 1))

    async def step_stat(self) -> None:
        await self.timed("STAT", self.conn.stat())

    async def step_list(self) -> None:
        await self.timed("LIST", self.conn.sizes())

    async def step_retr(self) -> None:
        number = self._pick()
        if number is None:
            return
        for raw in await self.timed("RETR", self.conn.retrieve([number])) or ():
            if self.journal is not None:
                self.note("RETR", number=number, **body_entry(raw))

    async def step_dele(self) -> None:
        number = self._pick()
        if number is not None and await self.timed("DELE", self._dele(number)):
            self.numbers.remove(number)
            self.note("DELE", number=number)

    async def _dele(self, number: int) -> bool:
        await self.conn.mark_deleted(number)
        return True

    async def leave(self) -> None:
        if await self.timed("QUIT", self._quit()):
            self.note("QUIT", committed=True)

    async def _quit(self) -> bool:
        await self.conn.quit()
        return True

