"""`mail.fetch` over IMAP: the batches a session fetches ahead of their own tasks
(`engine/kinds/mail_fetch.py` plans them and runs those tasks).

A task that holds a connection fetches the folder's next batches that no task has
started yet (within the `AHEAD` window), stores those whose turn has come, and hands
them over. The session's one thread works through reads and stores in turn: read a
batch's FETCH reply (the next one's FETCH already sent, so the server works
meanwhile), read the next, write the first, read the one after... The event loop's
part of a batch (the ledger, the hand-over) is done while that thread is reading:
two reads are queued on it at once, so it never sits idle waiting for the loop to
hand it a batch to store (it did for about 1 ms a batch, a fifth of its time).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from typing import TYPE_CHECKING, NamedTuple

from xfer.errors import PermanentError

if TYPE_CHECKING:
    from xfer.kinds._mail_folder import LocalFolder, Saved
    from xfer.protocols.imap import Fetched, ImapConnection

#: Batches of one folder that may be fetched ahead of the one being stored (memory bound).
AHEAD = 8
#: Fetches a session has queued at once (`fetch_ahead`).
DEPTH = 2


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


class _InFlight(NamedTuple):
    """A batch claimed from its task and being fetched on the session."""

    index: int
    handed: asyncio.Future[list[Fetched] | Saved | None]
    fetching: asyncio.Task[list[Fetched]]


async def _launch(folder: LocalFolder, conn: ImapConnection, flight: deque[_InFlight], after: int) -> bool:
    """Claim the next batch after `after` that may go and queue its fetch; False if none may."""
    index = next_ahead(folder, after)
    if index is None:
        return False
    flight.append(_InFlight(index, await _claim(folder, index), _fetch(folder, conn, index)))
    return True


async def fetch_ahead(folder: LocalFolder, conn: ImapConnection, after: int) -> None:
    """While holding `conn`, fetch the batches after `after` that no task has started
    and whose turn to fetch has come (same memory bound), and store those whose turn
    to be stored has come, for their tasks to take.

    `DEPTH` fetches are queued on the session's thread at once, so when one ends the
    thread goes straight on to read the next while the loop gets the batch just read
    ready to store; that store is queued behind the read and before the fetch after
    it: the thread reads, stores, reads... and never waits for the loop. A failed
    fetch leaves its batch to its own task (which retries it), and this connection
    closed unless the server just refused, so a broken session is not reused; a
    failed store is the batch's failure. Either way the batches fetched behind it
    are handed over as fetched (or to be fetched again), for their tasks."""
    flight: deque[_InFlight] = deque()  # the first is the batch being fetched or stored
    newest, more = after, True
    while more and len(flight) < DEPTH:
        more = await _launch(folder, conn, flight, newest)
        newest = flight[-1].index if flight else newest
    storing: asyncio.Task[Saved | None] | None = None
    try:
        while flight:
            index, handed, fetching = flight[0]
            try:
                fetched = await fetching
            except Exception as exc:  # noqa: BLE001 - handed on
                flight.popleft()
                handed.set_result(None)  # its task fetches it again
                if not isinstance(exc, PermanentError):
                    await conn.close()
                await _hand_over_fetched(flight)
                return
            storing = asyncio.ensure_future(folder.save_in_turn(index, fetched, conn))
            if more:  # its FETCH read is queued behind this store's writes
                more = await _launch(folder, conn, flight, newest)
                newest = flight[-1].index
            try:
                saved = await storing
            except Exception as exc:  # noqa: BLE001 - its task reports that, as its own failure
                flight.popleft()
                handed.set_exception(exc)
                await _hand_over_fetched(flight)
                return
            flight.popleft()
            handed.set_result(fetched if saved is None else saved)
    finally:
        if storing is not None:  # cancelled while storing (a no-op once it is done)
            storing.cancel()
        for batch in flight:
            batch.fetching.cancel()
            if not batch.handed.done():
                batch.handed.set_result(None)


async def _hand_over_fetched(flight: deque[_InFlight]) -> None:
    """After a failed fetch or store: the batches fetched behind it go to their tasks
    as fetched (or, if their fetch failed too, to be fetched again)."""
    while flight:
        fetched = None
        with contextlib.suppress(Exception):
            fetched = await flight[0].fetching
        flight.popleft().handed.set_result(fetched)
