"""One remote folder of a `mail.fetch` job and where it goes: its local store, its
ledger, and the order its batches are stored in (`engine/kinds/mail_fetch.py` plans
and fetches them)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar

from xfer.errors import UnsafePathError
from xfer.mailbox_store.budget import run_budget
from xfer.mailbox_store.ledger import Ledger, header_digest
from xfer.mailbox_store.spool import Spool
from xfer.mailbox_store.stores import Incoming, Store, open_store
from xfer.pathsafety import check_name
from xfer.retry import mark_spent

if TYPE_CHECKING:
    from xfer.kinds.mail_fetch import MailFetch
    from xfer.protocols.imap import Fetched, ImapConnection

T = TypeVar("T")


class Saved(NamedTuple):
    """A batch stored: how many of its messages were new, and their bytes."""

    count: int
    nbytes: int


class Beside(Protocol):
    """Runs blocking disk work somewhere other than the event loop."""

    def __call__(self, function: Callable[..., T], /, *args: Any) -> Awaitable[T]: ...


class Turnstile:
    """Lets the batches of one folder be stored in UID order, whatever order they are
    fetched in; a batch that failed still lets the next one pass.

    Each waiter waits on a future of its own index, woken once when that index
    passes: with a Condition, every advance woke every one of a folder's waiting
    batches to check again (10,000 wake-ups for 100 batches)."""

    def __init__(self) -> None:
        self._next = 0
        self._waiting: dict[int, asyncio.Future[None]] = {}

    async def wait(self, index: int) -> None:
        if self._next >= index:
            return
        future = self._waiting.get(index)
        if future is None:
            future = self._waiting[index] = asyncio.get_running_loop().create_future()
        await asyncio.shield(future)  # a cancelled waiter leaves it to the others

    def passes(self, index: int) -> bool:
        """Whether `wait(index)` would return at once."""
        return self._next >= index

    async def advance(self, index: int) -> None:
        self._next = max(self._next, index + 1)
        for passed in [waited for waited in self._waiting if waited <= self._next]:
            self._waiting.pop(passed).set_result(None)


class LocalFolder:
    """One remote folder and where it goes: the store, its ledger, the write order."""

    def __init__(self, job: MailFetch, name: str, local: str) -> None:
        self.job, self.name = job, name
        self.store: Store = open_store(job.dest, local, job.spec.format)
        self.ledger = Ledger(job.ctx.state, job.account, name)
        self.validity: int | None = None
        self.stored = self.ledger.stored()
        self.stored_now: list[str] = []
        self.deletable: list[str] = []
        self.turnstile = Turnstile()
        self.reserving = Turnstile()  # batches reserve memory in batch order
        self.lock = asyncio.Lock()
        #: UIDs of each batch, by index (set when planned), the batches a task started
        #: fetching, and those fetched ahead by another batch's task, until taken.
        self.batches: list[list[int]] = []
        self.claimed: set[int] = set()
        self.streamed: set[int] = set()  # batches of one message fetched to disk by their own task
        self.ahead: dict[int, asyncio.Future[list[Fetched] | Saved | None]] = {}
        #: Tasks of this folder waiting for or holding a connection (at most FETCHERS).
        self.fetchers = 0
        self.fetch_turn = asyncio.Condition()

    async def reserve(self, index: int, nbytes: int) -> int:
        """Reserve memory for batch `index` after the batches before it; what was taken."""
        try:
            await self.reserving.wait(index)
            return await run_budget().take(nbytes)
        finally:
            await self.reserving.advance(index)

    def token(self, uid: int | str) -> str:
        return f"{self.validity}-{uid}" if self.validity is not None else str(uid)

    async def recover(self) -> int:
        """Finish a batch a crashed run left pending; returns how many of it were kept."""
        pending = self.ledger.pending
        if pending is None:
            return 0
        tokens, mark = pending
        kept = await asyncio.to_thread(self.store.recover, mark, tokens)
        self.ledger.finish((token, "recovered") for token in kept)
        self.stored = self.ledger.stored()
        return len(kept)

    async def save(self, batch: list[tuple[Incoming, int]], beside: Beside = asyncio.to_thread) -> Saved:
        """Store (message, server size) pairs not stored yet; returns (count, bytes).
        `beside` runs the disk work: a thread of its own, or the thread of the
        connection that fetched the batch (`ThreadedSession.beside`)."""
        async with self.lock:
            fresh = [(message, size) for message, size in batch if message.token not in self.stored]
            if not fresh:
                return Saved(0, 0)
            store = self.store
            mark = store.mark() if store.mark_is_free else await beside(store.mark)
            self.ledger.begin([message.token for message, _ in fresh], mark)
            heads = await beside(store.write, [message for message, _ in fresh])
            self.ledger.finish(
                (message.token, header_digest(head, size)) for (message, size), head in zip(fresh, heads)
            )
            for message, _ in fresh:
                self.stored.add(message.token)
                self.stored_now.append(message.token)
        if self.job.spec.attachments is not None:
            from xfer.mailbox_store.attachments import save_attachments  # the email package: only when asked

            target = self.job.ctx.resolve(self.job.spec.attachments)
            for message, size in fresh:
                if message.spool is not None:  # parsing it would hold it whole in memory
                    self.job.ctx.emit("job.note", data={
                        "event": "attachments_skipped", "folder": self.name, "message": message.token, "size": size,
                    })
                    continue
                self.job.attachments += len(await asyncio.to_thread(save_attachments, message.raw, target))
        return Saved(len(fresh), sum(size for _, size in fresh))

    async def save_fetched(self, fetched: list[Fetched], beside: Beside = asyncio.to_thread) -> Saved:
        return await self.save(
            [(Incoming(self.token(m.uid), m.raw, m.received, m.spool), m.size) for m in fetched], beside
        )

    async def save_in_turn(self, index: int, fetched: list[Fetched], conn: ImapConnection) -> Saved | None:
        """Batch `index` just fetched on `conn`: if every batch before it is stored,
        store it now in `conn`'s thread and let the next batch pass; else None (its
        task stores it in its turn). A store error is final, as it is for a batch
        stored by its task: a retry could store a message twice."""
        if not self.turnstile.passes(index):
            return None
        try:
            saved = await self.save_fetched(fetched, conn.beside)
        except Exception as exc:
            mark_spent(exc)
            raise
        await self.turnstile.advance(index)
        return saved

    async def spooled(self, token: str, size: int, fetch: Callable[[Spool], Awaitable[float | None]]) -> Incoming:
        """A message too large for memory, fetched by `fetch` into a spool file of the
        store (removed again if the fetch fails)."""
        spool = await asyncio.to_thread(self.store.spool, token)
        try:
            received = await fetch(spool)
            await asyncio.to_thread(spool.finish, received)
        except BaseException:
            await asyncio.to_thread(spool.discard)
            raise
        return Incoming(token, spool.header, received, spool.path)


def local_name(folder: str, delimiter: str | None) -> str:
    """A remote folder as one local path component: the hierarchy becomes dots
    (Maildir++ style), so no folder can land inside another folder's cur/new/tmp."""
    name = folder.replace(delimiter, ".") if delimiter else folder
    reason = check_name(name)
    if reason is not None:
        raise UnsafePathError(f"folder {folder!r}: {reason}")
    return name
