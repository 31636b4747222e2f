"""Delivery under load: SMTP messages sent at a steady rate while the sessions run,
and one IMAP reader per recipient that looks for them, so the report gives the delay
users see (accepted by SMTP -> visible in the mailbox) as percentiles over the test.

Each message carries a unique token (`engine/mail/message.py`); a reader polls its
mailbox (NOOP, UID SEARCH HEADER for the run's tokens, UID FETCH of new ones) every
`poll_interval` seconds, so a delay is measured to within one poll interval. Fetched
copies are compared with what was sent (`engine/mail/compare.py`): verdicts are counted.
A reader stops when every message sent to it is visible and sending is over, or
`timeout` seconds after the last send."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from xfer.job import Task, TaskContext
from xfer.mail.compare import fingerprint
from xfer.mail.latency import Latency
from xfer.mail.message import TOKEN_HEADER, load_message, message_id, token_for
from xfer.mail.sending import SizeChooser, smtp_connector
from xfer.mail.tracking import NOT_ACCEPTED, Sent, Tracker
from xfer.protocols.imap import ImapConnection, ImapConnector
from xfer.protocols.smtp import SmtpConnection, SmtpConnector

if TYPE_CHECKING:
    from xfer.jobfile import JobFile


class Deliveries:
    """The sent messages, by recipient mailbox, and when sending ended."""

    def __init__(self, spec: Any, file: JobFile, run_id: str, command_timeout: float) -> None:
        self.spec, self.run_id = spec, run_id
        self.sizes = SizeChooser(spec.size)
        self.trackers = {address: Tracker() for address in spec.envelope.to}
        self.smtp: SmtpConnector = smtp_connector(file, spec.smtp, spec.starttls, command_timeout)
        self.pending = 0  # sends planned and not finished
        self.planned_all = False
        self.over_at: float | None = None  # when the last send finished
        self.errors: Counter[str] = Counter()

    def schedule(self, start: float) -> list[float]:
        return [start + index / self.spec.rate for index in range(self.spec.count)]

    def message(self, index: int) -> tuple[Sent, bytes, str]:
        """Message `index`: its record (in its recipient's tracker), bytes and recipient."""
        to = self.spec.envelope.to
        recipient = to[index % len(to)]
        token = token_for(self.run_id, index)
        sender = self.spec.envelope.sender
        data = load_message(token=token, envelope_from=sender, to_header=recipient, size=self.sizes.next())
        record = Sent(index, token, message_id(token, sender), fingerprint(data), len(data))
        self.trackers[recipient].add(record)
        return record, data, recipient

    def send_ended(self) -> None:
        self.pending -= 1
        if self.planned_all and not self.pending:
            self.over_at = time.monotonic()

    def all_planned(self) -> None:
        self.planned_all = True
        if not self.pending:
            self.over_at = time.monotonic()

    def summary(self) -> dict[str, Any]:
        delay = Latency()
        verdicts: Counter[str] = Counter()
        sent = accepted = 0
        for tracker in self.trackers.values():
            for record in tracker.messages.values():
                sent += 1
                verdicts[record.verdict] += 1
                if record.accepted is not None:
                    accepted += 1
                    if record.visible is not None:
                        delay.record(record.visible - record.accepted)
        return {
            "sent": sent,
            "accepted": accepted,
            "visible": delay.count,
            "verdicts": dict(sorted(verdicts.items())),
            "errors": dict(self.errors),
            "delay_ms": delay.summary(),
        }


class Deliver(Task[SmtpConnection]):
    """One message, on the delivery's pooled SMTP sessions; a failure is counted."""

    def __init__(self, deliveries: Deliveries, index: int) -> None:
        self.deliveries, self.index = deliveries, index
        self.connector = deliveries.smtp
        self.record: Sent | None = None
        self.data = b""
        self.recipient = ""

    @property
    def label(self) -> str:
        return f"deliver {self.index}"

    async def run(self, conn: SmtpConnection | None, ctx: TaskContext) -> dict[str, Any] | None:
        assert conn is not None
        if self.record is None:
            self.record, self.data, self.recipient = self.deliveries.message(self.index)
        self.record.sent = time.monotonic()
        await conn.send(self.deliveries.spec.envelope.sender, [self.recipient], self.data)
        self.record.accepted = time.monotonic()
        ctx.progress(len(self.data))
        self.deliveries.send_ended()
        return None

    def failed(self, error: Exception) -> dict[str, Any] | None:
        self.deliveries.errors[type(error).__name__] += 1
        self.deliveries.send_ended()
        return {"verdict": NOT_ACCEPTED}


class Reader(Task[ImapConnection]):
    """Watches one recipient's mailbox until its messages are all visible."""

    def __init__(self, deliveries: Deliveries, recipient: str, connector: ImapConnector) -> None:
        self.deliveries, self.recipient, self.connector = deliveries, recipient, connector

    @property
    def label(self) -> str:
        return f"reader {self.recipient}"

    async def run(self, conn: ImapConnection | None, ctx: TaskContext) -> dict[str, Any] | None:
        assert conn is not None
        deliveries, tracker = self.deliveries, self.deliveries.trackers[self.recipient]
        polls = 0
        while True:
            polls += 1
            for uid, raw in await conn.find(TOKEN_HEADER, deliveries.run_id, tracker.seen):
                tracker.arrived(uid, raw, time.monotonic())
            over = deliveries.over_at
            if over is not None and (not tracker.waiting or time.monotonic() >= over + deliveries.spec.timeout):
                break
            await asyncio.sleep(deliveries.spec.poll_interval)
        return {"polls": polls, "missing": len(tracker.waiting)}

