"""`mail.roundtrip`: send test messages over SMTP and check they arrive intact in a
POP3 or IMAP mailbox — the end-to-end check a cron monitor runs.

Phases, each a set of tasks: send `count` messages (at most `concurrency` at once),
each with a unique token; poll the mailbox on one connection until every accepted
message has arrived or `timeout` seconds passed; judge each message (one task per
message, failed unless its verdict is ok, so the exit code tells); with `cleanup`,
delete the copies of the test messages — only those."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from xfer.errors import PermanentError
from xfer.job import Job, Task, TaskContext
from xfer.mail.compare import OK, fingerprint
from xfer.mail.message import TOKEN_HEADER, filler_text, message_id, new_run_id, render, roundtrip_message, token_for
from xfer.mail.sending import StartTls, smtp_connector
from xfer.mail.tracking import NOT_ACCEPTED, Sent, Tracker
from xfer.protocols.imap import ImapConnection, ImapConnector
from xfer.protocols.pop3 import Pop3Connection, Pop3Connector
from xfer.protocols.smtp import SendResult, SmtpConnection, SmtpConnector
from xfer.urls import Url

if TYPE_CHECKING:
    from xfer.kinds._spec_mail_roundtrip import MailRoundtripSpec


Mailbox = Pop3Connection | ImapConnection


def _mode(value: StartTls) -> bool | None:
    return None if value == "auto" else value


class SendTest(Task[None]):
    """One test message. It takes its SMTP session inside `run`, after a send slot,
    so at most `concurrency` sessions are busy and waiting tasks hold no connection."""

    def __init__(self, job: MailRoundtrip, record: Sent, data: bytes) -> None:
        self.job, self.record, self.data = job, record, data
        self.size = len(data)

    @property
    def label(self) -> str:
        return f"send {self.record.token}"

    async def run(self, conn: None, ctx: TaskContext) -> dict[str, Any] | None:
        async with self.job.send_slots:
            result = await self.job.ctx.with_connection(self.job.smtp, self._send, self.label)
        self.record.reply = f"{result.code} {result.message}".strip()
        ctx.progress(len(self.data))
        return {"reply": self.record.reply, **({"refused": result.refused} if result.refused else {})}

    async def _send(self, conn: SmtpConnection) -> SendResult:
        record, envelope = self.record, self.job.spec.envelope
        record.sent = time.monotonic()
        result = await conn.send(envelope.sender, envelope.to, self.data)
        record.accepted = time.monotonic()
        return result


class PollMailbox(Task[Mailbox]):
    """Polls on one connection until every accepted message arrived or time is up."""

    def __init__(self, job: MailRoundtrip) -> None:
        self.job = job
        self.connector = job.mailbox
        self.deadline: float | None = None

    @property
    def label(self) -> str:
        return "poll mailbox"

    async def run(self, conn: Mailbox | None, ctx: TaskContext) -> dict[str, Any] | None:
        assert conn is not None
        tracker, spec = self.job.tracker, self.job.spec
        if self.deadline is None:  # a retry keeps the original deadline
            self.deadline = time.monotonic() + spec.timeout
        polls = 0
        while True:
            polls += 1
            for uid, raw in await conn.find(TOKEN_HEADER, self.job.run_id, tracker.seen):
                tracker.arrived(uid, raw, time.monotonic())
            if not tracker.waiting or time.monotonic() >= self.deadline:
                break
            await asyncio.sleep(min(spec.poll_interval, max(0.0, self.deadline - time.monotonic())))
        # One more look right away: a duplicate delivered with the original shows up now.
        for uid, raw in await conn.find(TOKEN_HEADER, self.job.run_id, tracker.seen):
            tracker.arrived(uid, raw, time.monotonic())
        return {"polls": polls + 1, "missing": len(tracker.waiting)}


class Verdict(Task[None]):
    """A message's verdict as a task outcome: failed unless ok, so the exit code tells."""

    def __init__(self, job: MailRoundtrip, record: Sent) -> None:
        self.job, self.record = job, record

    @property
    def label(self) -> str:
        return f"check {self.record.token}"

    async def run(self, conn: None, ctx: TaskContext) -> dict[str, Any] | None:
        record = self.record
        verdict = record.verdict
        if verdict != OK:
            detail = record.comparison.differences if record.comparison else []
            raise PermanentError(verdict + (": " + "; ".join(detail[:3]) if detail else ""))
        return {"latency_s": round(record.latency or 0.0, 4)}


class Cleanup(Task[Mailbox]):
    def __init__(self, job: MailRoundtrip, uids: list[str]) -> None:
        self.job, self.uids = job, uids
        self.connector = job.mailbox

    @property
    def label(self) -> str:
        return "cleanup"

    async def run(self, conn: Mailbox | None, ctx: TaskContext) -> dict[str, Any] | None:
        assert conn is not None
        deleted = await conn.delete(self.uids)
        self.job.deleted = deleted
        ctx.emit("job.note", data={"deleted": deleted, "mailbox": str(self.job.spec.fetch)})
        return {"deleted": deleted}


class MailRoundtrip(Job):
    kind = "mail.roundtrip"
    spec: MailRoundtripSpec

    def __init__(self, spec: Any, ctx: Any) -> None:
        super().__init__(spec, ctx)
        self.run_id = new_run_id()
        self.tracker = Tracker()
        self.deleted: int | None = None
        self.send_slots = asyncio.Semaphore(spec.concurrency)
        self._smtp: SmtpConnector | None = None
        self._mailbox: Pop3Connector | ImapConnector | None = None

    @property
    def smtp(self) -> SmtpConnector:
        if self._smtp is None:
            self._smtp = smtp_connector(self.ctx.file, self.spec.smtp, self.spec.starttls, self.spec.command_timeout)
        return self._smtp

    @property
    def mailbox(self) -> Pop3Connector | ImapConnector:
        if self._mailbox is None:
            spec = self.spec
            url = self.ctx.file.with_credentials(spec.fetch)
            factory = Pop3Connector if url.scheme.startswith("pop3") else ImapConnector
            self._mailbox = factory(
                url, self.ctx.file.host_config(url), starttls=_mode(spec.fetch_starttls), timeout=spec.command_timeout
            )
        return self._mailbox

    def endpoints(self) -> list[Url]:
        return [self.spec.smtp, self.spec.fetch]

    def build(self, index: int) -> tuple[Sent, bytes]:
        spec = self.spec
        token = token_for(self.run_id, index)
        values = {"index": index, "token": token, "run": self.run_id}
        headers = {"From": spec.envelope.sender, "To": ", ".join(spec.envelope.to), "Subject": "xfer roundtrip {index}"}
        headers.update(spec.headers)
        if spec.body is not None:
            body = render(spec.body, **values)
        else:
            body = filler_text(spec.size or 512, token).replace("\r\n", "\n")
        data = roundtrip_message(
            token=token,
            envelope_from=spec.envelope.sender,
            headers={name: render(value, **values) for name, value in headers.items()},
            body=body,
            attachments=list(spec.attachments),
        )
        record = Sent(index, token, message_id(token, spec.envelope.sender), fingerprint(data), len(data))
        return record, data

    async def plan(self) -> AsyncIterator[Task[Any]]:
        if self.ctx.dry_run:
            for connector, label in ((self.smtp, "smtp login"), (self.mailbox, "mailbox login")):
                await self.ctx.with_connection(connector, _nothing, label)
            return
        for index in range(self.spec.count):
            record, data = self.build(index)
            self.tracker.add(record)
            yield SendTest(self, record, data)
        await self.ctx.barrier()
        if self.tracker.waiting:
            yield PollMailbox(self)
            await self.ctx.barrier()
        for record in self.tracker.messages.values():
            if record.verdict != NOT_ACCEPTED:
                yield Verdict(self, record)
        uids = self.tracker.uids()
        if self.spec.cleanup and uids:
            yield Cleanup(self, uids)

    def summary(self) -> dict[str, Any]:
        return {"run_id": self.run_id, "deleted": self.deleted, **self.tracker.summary()}


async def _nothing(_conn: object) -> None:
    """A dry run only proves that connecting and logging in work."""
