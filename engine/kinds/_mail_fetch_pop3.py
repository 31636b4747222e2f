"""`mail.fetch` of a POP3 mailbox: one task on one session (UIDL + LIST, TOP for
`since`, RETR in batches, DELE of what was stored)."""

from __future__ import annotations

from datetime import date, datetime, timezone
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from typing import Any

from xfer.job import Task, TaskContext
from xfer.kinds._mail_folder import LocalFolder
from xfer.mailbox_store.budget import run_budget
from xfer.mailbox_store.spool import CHUNK, STREAM_ABOVE
from xfer.mailbox_store.stores import Incoming
from xfer.protocols.pop3 import Pop3Connection, Pop3Connector


class Pop3Fetch(Task[Pop3Connection]):
    """The whole POP3 mailbox on one session: UIDL + LIST, TOP for `since`, RETR in batches."""

    def __init__(self, folder: LocalFolder, connector: Pop3Connector) -> None:
        self.folder, self.connector = folder, connector

    @property
    def label(self) -> str:
        return "pop3 INBOX"

    async def run(self, conn: Pop3Connection | None, ctx: TaskContext) -> dict[str, Any] | None:
        assert conn is not None
        job, folder, spec = self.folder.job, self.folder, self.folder.job.spec
        listing = await conn.inventory()
        on_server = {uid for _, uid, _ in listing}
        wanted = []
        for number, uid, size in listing:
            if uid in folder.stored:
                continue
            if spec.max_size is not None and size > spec.max_size:
                job.skipped += 1
            elif spec.since is not None and not _since(await conn.headers(number), spec.since):
                job.skipped += 1
            else:
                wanted.append((number, uid, size))
        stored = 0
        for chunk in pop3_batches(wanted, spec.batch):
            streamed = chunk[0][2] > STREAM_ABOVE  # alone, and fetched to disk
            taken = await run_budget().take(CHUNK if streamed else sum(size for _, _, size in chunk))
            try:
                if streamed:
                    ((number, uid, size),) = chunk
                    message = await folder.spooled(
                        uid, size, lambda spool: conn.retrieve_in_chunks(number, spool.write, CHUNK)
                    )
                    count, nbytes = await folder.save([(message, size)])
                else:
                    raws = await conn.retrieve([number for number, _, _ in chunk])
                    count, nbytes = await folder.save(
                        [(Incoming(uid, raw), len(raw)) for (_, uid, _), raw in zip(chunk, raws)]
                    )
            finally:
                await run_budget().give(taken)
            job.count(count, nbytes, ctx)
            stored += count
        deleted = 0
        if spec.delete_after:
            deletable = folder.stored & on_server
            deleted = await conn.delete(deletable) if deletable else 0
            folder.ledger.forget(deletable)
            job.deleted += deleted
            if deleted:
                ctx.emit("job.note", data={"deleted": deleted, "folder": "INBOX"})
        return {"stored": stored, "deleted": deleted}


def _since(header: bytes, day: date) -> bool:
    """Whether a POP3 message's Date is on or after `day` (kept when it has no usable Date)."""
    value = BytesHeaderParser().parsebytes(header).get("Date")
    try:
        when = parsedate_to_datetime(str(value)) if value else None
    except (TypeError, ValueError):
        when = None
    if when is None:
        return True
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when >= datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def pop3_batches(wanted: list[tuple[int, str, int]], count: int) -> list[list[tuple[int, str, int]]]:
    """(number, uid, size) in listing order, in runs of at most `count`; a message over
    STREAM_ABOVE stands alone (it is streamed to disk)."""
    out: list[list[tuple[int, str, int]]] = []
    for message in wanted:
        if message[2] > STREAM_ABOVE or not out or len(out[-1]) >= count or out[-1][0][2] > STREAM_ABOVE:
            out.append([message])
        else:
            out[-1].append(message)
    return out
