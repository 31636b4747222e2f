"""`mail.fetch` over IMAP: the batches a session fetches ahead of their own tasks
(`engine/kinds/mail_fetch.py` plans them and runs those tasks).

A task that holds a connection fetches the folder's next batches that no task has
started yet (within the `AHEAD` window), stores those whose turn has come, and hands
them over. The session's one thread works through three things per batch: read its
FETCH reply (the next one's FETCH already sent, so the server works meanwhile), write
it to the store, read the next. The event loop's part of a stored batch (the ledger,
the hand-over) is done while that thread is already reading the next batch: its
FETCH read is queued behind the batch's store, not sent to the thread only once the
loop has finished with the batch (the thread sat idle for that).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from xfer.errors import PermanentError

if TYPE_CHECKING:
    from xfer.kinds._mail_folder import LocalFolder, Saved
    from xfer.protocols.imap import Fetched, ImapConnection

#: Batches of one folder that may be fetched ahead of the one being stored (memory bound).
AHEAD = 8


def next_ahead(folder: LocalFolder, after: int) -> int | None:
    """The batch after `after` to fetch ahead as things stand: not started by any
    task, its turn to fetch come and its memory reserved."""
    index = after + 1
    while index < len(folder.batches) and folder.turnstile.passes(index - AHEAD) and folder.reserving.passes(index + 1):
        if index not in folder.claimed and index not in folder.streamed:
            return index
        index += 1
    return None


def uids_of(folder: LocalFolder, index: int | None) -> list[int]:
    """The UIDs of batch `index` (none for None)."""
    return [] if index is None else folder.batches[index]


async def _claim(folder: LocalFolder, index: int) -> asyncio.Future[list[Fetched] | Saved | None]:
    """Take batch `index` from its task: the future it then waits on."""
    folder.claimed.add(index)
    handed = folder.ahead[index] = asyncio.get_running_loop().create_future()
    async with folder.fetch_turn:
        folder.fetch_turn.notify_all()  # its task stops waiting for a connection
    return handed


def _fetch(folder: LocalFolder, conn: ImapConnection, index: int) -> asyncio.Task[list[Fetched]]:
    return asyncio.ensure_future(conn.fetch_messages(folder.batches[index], uids_of(folder, next_ahead(folder, index))))


async def fetch_ahead(folder: LocalFolder, conn: ImapConnection, after: int) -> None:
    """While holding `conn`, fetch the batches after `after` that no task has started
    and whose turn to fetch has come (same memory bound), and store those whose turn
    to be stored has come, for their tasks to take; each batch's FETCH goes out
    before the one before it is stored, and is read right after that store. A failed
    fetch leaves the batch to its own task (which retries it) and this connection
    closed unless the server just refused, so a broken session is not reused; a
    failed store is the batch's failure (the batch fetched behind it is handed over
    as fetched, for its task to store in its turn)."""
    index = next_ahead(folder, after)
    if index is None:
        return
    handed = await _claim(folder, index)
    fetching: asyncio.Task[list[Fetched]] | None = _fetch(folder, conn, index)
    storing: asyncio.Task[Saved | None] | None = None
    following: tuple[int, asyncio.Future[list[Fetched] | Saved | None]] | None = None
    try:
        while fetching is not None:
            try:
                fetched = await fetching
            except Exception as exc:  # noqa: BLE001 - handed on
                fetching = None
                handed.set_result(None)  # its task fetches it again
                if not isinstance(exc, PermanentError):
                    await conn.close()
                return
            fetching = None
            storing = asyncio.ensure_future(folder.save_in_turn(index, fetched, conn))
            after_this = next_ahead(folder, index)
            if after_this is not None:  # its FETCH read is queued behind this store's writes
                following = (after_this, await _claim(folder, after_this))
                fetching = _fetch(folder, conn, after_this)
            try:
                saved = await storing
            except Exception as exc:  # noqa: BLE001 - its task reports that, as its own failure
                storing = None
                handed.set_exception(exc)
                await _hand_over_fetched(fetching, following)
                fetching = following = None
                return
            storing = None
            handed.set_result(fetched if saved is None else saved)
            if following is None:
                return
            (index, handed), following = following, None
    finally:
        for task in (fetching, storing):
            if task is not None and not task.done():
                task.cancel()
        for future in (handed, None if following is None else following[1]):
            if future is not None and not future.done():  # cancelled
                future.set_result(None)


async def _hand_over_fetched(
    fetching: asyncio.Task[list[Fetched]] | None,
    following: tuple[int, asyncio.Future[list[Fetched] | Saved | None]] | None,
) -> None:
    """After a failed store: the batch fetched behind it goes to its task as fetched
    (or, if its fetch failed too, to be fetched again)."""
    if fetching is None or following is None:
        return
    fetched = None
    with contextlib.suppress(Exception):
        fetched = await fetching
    following[1].set_result(fetched)
