"""`mail.fetch`: back up POP3/IMAP mailboxes to Maildir or mbox, incrementally.

Planning, per job (one account): IMAP folders come from the URL path, `folders:`, or
`*` (LIST). Each folder is opened locally first (a batch a crashed run left pending
is recovered: see `engine.mailbox_store.ledger`), then surveyed on one connection:
SELECT (UIDVALIDITY), UID SEARCH (with `since`), RFC822.SIZE of the new UIDs (for
`max_size` and batching); with nothing stored yet and no `since`, one `UID FETCH 1:*`
of the sizes does both. A UIDVALIDITY change re-recognises stored messages by
their headers (no duplicates). New UIDs are cut into batches (`batch` messages, at
most `BATCH_BYTES`), one task each: one `UID FETCH a:b (BODY.PEEK[] ...)` on a pooled
connection, then the batch is stored — in UID order per folder (a turnstile). A batch
whose turn has come is stored by the connection's own thread right after its FETCH
(one thread reads and writes it: no second thread fighting it for the GIL); one whose
turn has not come is stored by its task later, without holding the connection. A task
that holds a connection also fetches (and stores, in turn) the folder's next batches
that no task has started yet (within the `AHEAD` window), sending each FETCH before
storing the batch before it so the server works meanwhile, and hands them over: each
lease serves many batches, so many accounts sharing a host's few slots do not log in
again for every batch. Every batch
(and POP3 retrieval) first reserves its size in the run's one memory budget
(`engine.mailbox_store.budget`), shared by every mail.fetch job and folder. POP3 is one
task: UIDL + LIST, then RETR of new messages in batches on that session. A message
over `STREAM_ABOVE` (16 MiB) is never held whole: it goes alone, in chunks (IMAP
partial FETCH, POP3 RETR a block of lines at a time) into a spool file beside the store
(`engine.mailbox_store.spool`), reserving one chunk of the budget; its attachments are
not extracted (a job note says so).

Beside this module: `_mail_folder` (a folder's local side: store, ledger, the order
batches are stored in), `_mail_fetch_ahead` (the batches a session fetches ahead of
their tasks) and `_mail_fetch_pop3` (the POP3 task).

`delete_after` deletes, after every batch ended, exactly the messages recorded as
stored (IMAP UID STORE \\Deleted + UID EXPUNGE; POP3 DELE + QUIT); skipped or failed
messages stay on the server.

Example::

    - name: backup-alice
      kind: mail.fetch
      source: imaps://alice@mail.example.org/*
      dest: backup/alice
      format: maildir
      since: 2024-01-01
      max_size: 20M
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from xfer.errors import PermanentError, UnsafePathError
from xfer.job import Job, Task, TaskContext
from xfer.kinds._mail_fetch_ahead import AHEAD, fetch_ahead, next_ahead, uids_of
from xfer.kinds._mail_folder import LocalFolder, Saved, local_name
from xfer.mailbox_store.budget import run_budget
from xfer.mailbox_store.ledger import digest
from xfer.mailbox_store.spool import CHUNK, STREAM_ABOVE
from xfer.protocols.imap import Fetched, ImapConnection, ImapConnector
from xfer.urls import Url

if TYPE_CHECKING:
    from xfer.kinds._spec_mail_fetch import MailFetchSpec

#: A batch task fetches at most this many bytes (a big message still goes alone).
BATCH_BYTES = 16 * 1024 * 1024
#: Tasks of one folder that may wait for or hold a connection at once; each one also
#: fetches the batches after its own, so a folder needs few logins. One: its FETCHes
#: are pipelined, and a second session of the same folder only adds a login and a
#: thread contending for the GIL (measured: more CPU for the same wall time).
FETCHERS = 1
#: Seconds a survey's session waits for the first batch's task to reserve its memory
#: before it gives up fetching the batches itself.
FIRST_BATCH_WAIT = 2.0


class ImapBatch(Task[None]):
    """One `UID FETCH` of a batch, then storing it in its turn (no connection held)."""

    def __init__(self, folder: LocalFolder, connector: ImapConnector, index: int, uids: list[int], size: int):
        self.folder, self.connector_for_fetch, self.index, self.uids = folder, connector, index, uids
        self.size = size
        #: One message over STREAM_ABOVE: fetched in chunks to disk, reserving one chunk.
        self.streamed = index in folder.streamed

    @property
    def label(self) -> str:
        return f"{self.folder.name} {self.uids[0]}:{self.uids[-1]}"

    async def run(self, conn: None, ctx: TaskContext) -> dict[str, Any] | None:
        folder = self.folder
        await folder.turnstile.wait(self.index - AHEAD)
        taken = await folder.reserve(self.index, CHUNK if self.streamed else self.size)
        obtained: list[Fetched] | Saved | None = None
        count = nbytes = 0
        try:
            obtained = await self._obtain()
        finally:
            try:
                await folder.turnstile.wait(self.index)
                if obtained is not None:
                    saved = obtained if isinstance(obtained, Saved) else await folder.save_fetched(obtained)
                    count, nbytes = saved
                    folder.job.count(count, nbytes, ctx)
            finally:
                await folder.turnstile.advance(self.index)
                await run_budget().give(taken)
        return {"stored": count, "bytes": nbytes}

    async def _obtain(self) -> list[Fetched] | Saved:
        """This batch's messages, or the batch already stored (`save_in_turn`): handed
        over by a sibling that fetched it ahead, or fetched on a connection of our own
        once fewer than FETCHERS siblings use one."""
        folder = self.folder
        async with folder.fetch_turn:
            await folder.fetch_turn.wait_for(
                lambda: self.index in folder.ahead or folder.fetchers < FETCHERS
            )
            handed = folder.ahead.pop(self.index, None)
            if handed is None:
                folder.claimed.add(self.index)
                folder.fetchers += 1
        if handed is not None:
            obtained = await handed
            if obtained is not None:
                return obtained
            # fetching it ahead failed: fetch it here (retried), outside the FETCHERS bound
            return await folder.job.ctx.with_connection(self.connector_for_fetch, self._fetch, self.label)
        try:
            return await folder.job.ctx.with_connection(self.connector_for_fetch, self._fetch, self.label)
        finally:
            async with folder.fetch_turn:
                folder.fetchers -= 1
                folder.fetch_turn.notify_all()

    async def _fetch(self, conn: ImapConnection) -> list[Fetched] | Saved:
        folder = self.folder
        if conn.uidvalidity != folder.validity:
            raise PermanentError(f"{folder.name}: UIDVALIDITY changed during the run; the next run re-syncs")
        if self.streamed:
            uid = self.uids[0]
            message = await folder.spooled(
                folder.token(uid), self.size, lambda spool: conn.fetch_in_chunks(uid, spool.write, CHUNK)
            )
            return [Fetched(uid, self.size, message.received, message.raw, message.spool)]
        fetched = await conn.fetch_messages(self.uids, uids_of(folder, next_ahead(folder, self.index)))
        saved = await folder.save_in_turn(self.index, fetched, conn)
        await fetch_ahead(folder, conn, self.index)
        return fetched if saved is None else saved


class ImapSurvey(Task[None]):
    """What to fetch of a folder (`MailFetch._survey`), on a session it then keeps to
    fetch the first batches (and on, `fetch_ahead`): given back between survey and
    batches, with many accounts on few slots, it was closed for another account's
    survey and the batches logged in again (40 logins for 20 accounts)."""

    def __init__(self, folder: LocalFolder, connector: ImapConnector) -> None:
        self.folder, self.connector_for_fetch = folder, connector
        #: Per batch (`folder.batches`, set first) its bytes, for the planner.
        self.planned: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()

    @property
    def label(self) -> str:
        return f"survey {self.folder.name}"

    async def run(self, conn: None, ctx: TaskContext) -> dict[str, Any] | None:
        folder = self.folder
        try:
            await folder.job.ctx.with_connection(self.connector_for_fetch, self._on, self.label)
        except BaseException as exc:
            if not self.planned.done():
                self.planned.set_exception(exc if isinstance(exc, Exception) else PermanentError("survey stopped"))
            raise
        return {"batches": len(folder.batches)}

    async def _on(self, conn: ImapConnection) -> None:
        folder = self.folder
        todo = await folder.job._survey(conn, folder)
        folder.job.planned[folder.name] = len(todo)
        chunks = batches(todo, folder.job.spec.batch)
        folder.batches = [[uid for uid, _ in chunk] for chunk in chunks]
        sizes = [sum(size for _, size in chunk) for chunk in chunks]
        folder.streamed = {index for index, chunk in enumerate(chunks) if streams(chunk)}
        if not chunks or 0 in folder.streamed:
            self.planned.set_result(sizes)
            return
        async with folder.fetch_turn:
            folder.fetchers += 1  # before the batches exist: batch 0 waits for us
        try:
            self.planned.set_result(sizes)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(FIRST_BATCH_WAIT):
                    await folder.reserving.wait(1)  # batch 0's task has its memory
            await fetch_ahead(folder, conn, -1)
        finally:
            async with folder.fetch_turn:
                folder.fetchers -= 1
                folder.fetch_turn.notify_all()


def streams(chunk: list[tuple[int, int]]) -> bool:
    """Whether a batch is one message over STREAM_ABOVE (fetched in chunks to disk)."""
    return len(chunk) == 1 and chunk[0][1] > STREAM_ABOVE


class ImapDelete(Task[ImapConnection]):
    def __init__(self, folder: LocalFolder, connector: ImapConnector) -> None:
        self.folder, self.connector = folder, connector

    @property
    def label(self) -> str:
        return f"delete {self.folder.name}"

    async def run(self, conn: ImapConnection | None, ctx: TaskContext) -> dict[str, Any] | None:
        assert conn is not None
        folder = self.folder
        tokens = set(folder.deletable) | set(folder.stored_now)
        if conn.uidvalidity != folder.validity:
            raise PermanentError(f"{folder.name}: UIDVALIDITY changed; nothing deleted")
        deleted = await conn.delete([token.rsplit("-", 1)[1] for token in tokens])
        folder.ledger.forget(tokens)
        folder.job.deleted += deleted
        ctx.emit("job.note", data={"deleted": deleted, "folder": folder.name})
        return {"deleted": deleted}


class Refused(Task[None]):
    """A folder that cannot be fetched (unsafe name...), reported as a failed task."""

    def __init__(self, name: str, error: Exception) -> None:
        self.name, self.error = name, error

    @property
    def label(self) -> str:
        return f"folder {self.name!r}"

    async def run(self, conn: None, ctx: TaskContext) -> dict[str, Any] | None:
        raise self.error


def batches(sizes: list[tuple[int, int]], count: int, limit: int = BATCH_BYTES) -> list[list[tuple[int, int]]]:
    """(uid, size) pairs in UID order, cut into runs of at most `count` messages and
    `limit` bytes (a larger message goes alone)."""
    out: list[list[tuple[int, int]]] = []
    current: list[tuple[int, int]] = []
    total = 0
    for uid, size in sizes:
        if current and (len(current) >= count or total + size > limit):
            out.append(current)
            current, total = [], 0
        current.append((uid, size))
        total += size
    if current:
        out.append(current)
    return out


def folder_names(spec: MailFetchSpec) -> list[str]:
    """The folders to fetch: `folders`, else the URL path, else INBOX."""
    return spec.folders or [spec.source.path.strip("/") or "INBOX"]


class MailFetch(Job):
    kind = "mail.fetch"
    unit, unit_count = "msg", "stored"  # an IMAP batch item stores many messages
    spec: MailFetchSpec

    def __init__(self, spec: Any, ctx: Any) -> None:
        super().__init__(spec, ctx)
        self.url: Url = ctx.file.with_credentials(spec.source)
        self.host = ctx.host_config(self.url)
        self.dest = ctx.resolve(spec.dest)
        self.account = f"{self.url.scheme}://{self.url.user or ''}@{self.url.endpoint} -> {spec.format}:{self.dest}"
        self.fetched = self.bytes = self.skipped = self.deleted = self.recovered = self.attachments = 0
        self.resynced: list[str] = []
        self.folders: list[LocalFolder] = []
        self.planned: dict[str, int] = {}

    def endpoints(self) -> list[Url]:
        return [self.spec.source]

    def count(self, stored: int, nbytes: int, ctx: TaskContext) -> None:
        self.fetched += stored
        self.bytes += nbytes
        if nbytes:
            ctx.progress(nbytes)

    def _connector(self, folder: str | None = None) -> Any:
        starttls = None if self.spec.starttls == "auto" else self.spec.starttls
        if folder is None:
            from xfer.protocols.pop3 import Pop3Connector  # poplib and email's parser: POP3 jobs only

            return Pop3Connector(self.url, self.host, starttls=starttls, timeout=self.spec.command_timeout, ahead=True)
        url = dataclasses.replace(self.url, path="/" + folder)
        return ImapConnector(url, self.host, starttls=starttls, timeout=self.spec.command_timeout, ahead=True)

    async def _open(self, name: str, delimiter: str | None) -> LocalFolder:
        folder = LocalFolder(self, name, local_name(name, delimiter))
        self.recovered += await folder.recover()
        self.folders.append(folder)
        return folder

    async def plan(self) -> AsyncIterator[Task[Any]]:
        if self.url.scheme.startswith("pop3"):
            from xfer.kinds._mail_fetch_pop3 import Pop3Fetch

            connector = self._connector()
            if self.ctx.dry_run:
                await self.ctx.with_connection(connector, _nothing, "login")
                return
            yield Pop3Fetch(await self._open("INBOX", None), connector)
            return
        for name, delimiter in await self._folder_list():
            try:
                folder = await self._open(name, delimiter)
            except (UnsafePathError, OSError) as exc:
                yield Refused(name, exc)
                continue
            connector = self._connector(name)
            if self.ctx.dry_run:
                todo = await self.ctx.with_connection(connector, lambda conn, f=folder: self._survey(conn, f), f"survey {name}")
                self.planned[name] = len(todo)
                continue
            survey = ImapSurvey(folder, connector)
            yield survey
            try:
                sizes = await survey.planned
            except Exception:  # noqa: BLE001 - the survey task reports it; the other folders go on
                continue
            for index, uids in enumerate(folder.batches):
                yield ImapBatch(folder, connector, index, uids, sizes[index])
        if self.spec.delete_after and not self.ctx.dry_run:
            await self.ctx.barrier()
            for folder in self.folders:
                if folder.deletable or folder.stored_now:
                    yield ImapDelete(folder, self._connector(folder.name))

    async def _folder_list(self) -> list[tuple[str, str | None]]:
        names = folder_names(self.spec)
        if names != ["*"]:
            return [(name, None) for name in names]
        listed = await self.ctx.with_connection(self._connector("INBOX"), ImapConnection.folders, "list folders")
        return [(folder.name, folder.delimiter) for folder in listed]

    async def _survey(self, conn: ImapConnection, folder: LocalFolder) -> list[tuple[int, int]]:
        """(uid, size) of the messages to fetch; updates the ledger on a UIDVALIDITY change."""
        spec, ledger = self.spec, folder.ledger
        validity = await conn.current_view()
        known = ledger.validity
        if known is not None and known != validity and folder.stored:
            folder.validity = validity
            headers = await conn.headers(await conn.search_uids())
            server = {folder.token(uid): digest(head, size) for uid, (size, head) in headers.items()}
            ledger.resync(validity, server)
            self.resynced.append(folder.name)
            self.ctx.emit("job.note", data={"folder": folder.name, "uidvalidity": [known, validity]})
        elif known != validity:
            ledger.set_validity(validity)
        folder.validity = validity
        folder.stored = ledger.stored()
        if not folder.stored and spec.since is None:  # the first run: every message is new
            sizes = await conn.all_sizes()
            new = sorted(sizes)
        else:  # the sizes of the new ones only: a SEARCH answer is a sixth of the bytes of all sizes
            candidates = await conn.search_uids(spec.since)
            new = [uid for uid in candidates if folder.token(uid) not in folder.stored] if folder.stored else candidates
            if spec.delete_after:
                folder.deletable = [
                    folder.token(uid) for uid in await conn.search_uids() if folder.token(uid) in folder.stored
                ]
            sizes = await conn.sizes(new)
        todo = []
        for uid in new:
            size = sizes.get(uid)
            if size is None:
                continue  # expunged meanwhile
            if spec.max_size is not None and size > spec.max_size:
                self.skipped += 1
            else:
                todo.append((uid, size))
        return todo

    async def finish(self) -> None:
        for folder in self.folders:
            await asyncio.to_thread(folder.store.close)

    def summary(self) -> dict[str, Any]:
        figures: dict[str, Any] = {
            "folders": len(self.folders),
            "fetched": self.fetched,
            "bytes": self.bytes,
            "skipped": self.skipped,
            "deleted": self.deleted,
        }
        if self.recovered:
            figures["recovered"] = self.recovered
        if self.resynced:
            figures["resynced"] = self.resynced
        if self.spec.attachments is not None:
            figures["attachments"] = self.attachments
        if self.ctx.dry_run:
            figures["would_fetch"] = self.planned
        return figures


async def _nothing(_conn: object) -> None:
    """A dry run only proves that connecting and logging in work."""
