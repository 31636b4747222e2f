"""`mail.load`: load-test an SMTP server, closed or open loop.

Closed loop (no `rate`): `concurrency` sessions send back to back, for `count`
messages or `duration` seconds. Open loop (`rate`): messages are due at a constant
rate for `duration` seconds whatever the server does; each message's latency counts
from its scheduled start, so a slow server shows as latency and not as a lower send
rate (no coordinated omission, as in wrk2/k6). At most `concurrency` messages are in
flight; one that starts more than `late_after` seconds after its due time is a late start.

Each item is one message, run by the job's connection workers: `concurrency` pooled
SMTP sessions (the host's `max_connections` bounds them too), each sending the next
message as soon as it is done with one; a session is closed after
`messages_per_connection` transactions. Errors are counted, not retried (`retries`
defaults to 0 here): a load test measures the server, it does not repair it.

On a server that offers PIPELINING, a closed-loop test without retries does not wait
for the reply to a message's content: the session's next message goes out in the same
write, and the reply is counted when it comes (`SmtpConnection.submit`); a message's
latency still runs from its first command to that reply. The job ends once every
reply is in; a stopped run counts the messages still unanswered as failed."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xfer.errors import PlaintextAuthRefused
from xfer.job import Job, Task, TaskContext
from xfer.mail.html import write_load_report
from xfer.mail.latency import Latency
from xfer.mail.loadstats import LoadStats, Unanswered
from xfer.mail.message import load_message, new_run_id, token_for
from xfer.mail.sending import SizeChooser, smtp_connector
from xfer.protocols.smtp import SmtpConnection, SmtpConnector
from xfer.urls import Url

if TYPE_CHECKING:
    from xfer.kinds._spec_mail_load import MailLoadSpec


class SendMessage(Task[SmtpConnection]):
    """One message, run on a pooled SMTP session by the job's connection workers; any
    failure (a refused connection included) is a counted outcome, not a failed item."""

    __slots__ = ("job", "index", "due", "connector", "counted")

    def __init__(self, job: MailLoad, index: int, due: float | None) -> None:
        self.job, self.index, self.due = job, index, due
        self.connector = job.connector
        self.counted = False  # counted as sent (once, whatever the retries)

    @property
    def label(self) -> str:
        return f"message {self.index}"

    async def run(self, conn: SmtpConnection | None, ctx: TaskContext) -> dict[str, Any] | None:
        job = self.job
        if job.deadline is not None and time.monotonic() >= job.deadline:
            return None  # planned ahead of a closed-loop test's end: not sent
        assert conn is not None
        if not self.counted:
            self.counted = True
            job.stats.started()
            if self.due is not None and time.monotonic() - self.due > job.spec.late_after:
                job.stats.late()
        began = self.due if self.due is not None else time.monotonic()
        data, recipients = job.message(self.index)
        limit = job.spec.messages_per_connection
        try:
            if job.unanswered is None:
                result = await conn.send(job.spec.envelope.sender, recipients, data)
                job.stats.done(began, result, len(data))
            else:
                await job.unanswered.submit(conn, job.spec.envelope.sender, recipients, data, began)
        finally:
            if limit is not None and conn.messages >= limit:
                await conn.close()
        ctx.progress(len(data))
        return None

    def failed(self, error: Exception) -> dict[str, Any] | None:
        if not self.counted:  # no session could be had for it
            self.counted = True
            self.job.stats.started()
        self.job.stats.error(error)
        if isinstance(error, PlaintextAuthRefused):
            raise error  # a setting to change, not a server's answer: the job fails
        return None


class MailLoad(Job):
    kind = "mail.load"
    unit = "msg"
    spec: MailLoadSpec

    def __init__(self, spec: Any, ctx: Any) -> None:
        super().__init__(spec, ctx)
        self.stats = LoadStats()
        self.run_id = new_run_id()
        self.sizes = SizeChooser(spec.size)
        self._connector: SmtpConnector | None = None
        self.concurrency = spec.concurrency
        self._envelopes: dict[int, tuple[tuple[str, ...], str]] = {}
        #: When a closed-loop test with a duration ends (messages planned ahead of it are not sent).
        self.deadline: float | None = None
        #: A closed-loop test without retries goes on to the next message before the
        #: server has answered this one's content (so there is nothing to retry); an
        #: open-loop test keeps `concurrency` messages in flight, no more.
        self.unanswered = Unanswered(self.stats) if spec.rate is None and not spec.retries else None

    @property
    def connector(self) -> SmtpConnector:
        if self._connector is None:
            self._connector = smtp_connector(self.ctx.file, self.spec.smtp, self.spec.starttls, self.spec.timeout)
        return self._connector

    def endpoints(self) -> list[Url]:
        return [self.spec.smtp]

    def message(self, index: int) -> tuple[bytes, tuple[str, ...]]:
        """Message `index`: its bytes and its recipients (taken in turn from envelope.to)."""
        recipients, to_header = self._envelope(index * self.spec.recipients % len(self.spec.envelope.to))
        data = load_message(
            token=token_for(self.run_id, index),
            envelope_from=self.spec.envelope.sender,
            to_header=to_header,
            size=self.sizes.next(),
        )
        return data, recipients

    def _envelope(self, first: int) -> tuple[tuple[str, ...], str]:
        """The recipients from envelope.to[first] on, and their To header (made once per `first`)."""
        envelope = self._envelopes.get(first)
        if envelope is None:
            to = self.spec.envelope.to
            recipients = tuple(to[(first + n) % len(to)] for n in range(self.spec.recipients))
            envelope = self._envelopes[first] = (recipients, ", ".join(dict.fromkeys(recipients)))
        return envelope

    async def plan(self) -> AsyncIterator[Task[Any]]:
        spec = self.spec
        limit = self.ctx.file.host_limit(spec.smtp)
        if spec.concurrency > limit:
            self.ctx.emit("job.note", data={
                "warning": f"concurrency {spec.concurrency} is capped by the host limit of {limit} connections "
                f"for {spec.smtp.endpoint} (raise hosts.{spec.smtp.host}.max_connections)",
            })
        start = time.monotonic()
        self.stats.begin(start)
        if self.expected is not None:  # the live display's total; the planner reaches it only at the end
            self.ctx.emit("job.expected", data={"tasks": self.expected})
        if spec.rate is None and spec.duration is not None:
            self.deadline = start + spec.duration
        for index, due in self._schedule(start):
            while due is not None and due > time.monotonic():  # the loop may wake a little early
                await asyncio.sleep(due - time.monotonic())
            yield SendMessage(self, index, due)

    @property
    def expected(self) -> int | None:
        """Messages the test plans, when known before it runs: rate x duration, or the count."""
        spec = self.spec
        if spec.rate is not None:
            return int(spec.rate * spec.duration)  # type: ignore[operator]
        return spec.count if spec.duration is None else None

    def _schedule(self, start: float) -> Iterator[tuple[int, float | None]]:
        """(index, due time): due times at `rate` (open loop), or None while the count
        or duration lasts (closed loop: the next message goes when a session is free)."""
        spec = self.spec
        if spec.rate is not None:
            for index in range(self.expected or 0):
                yield index, start + index / spec.rate
            return
        deadline = start + spec.duration if spec.duration is not None else None
        index = 0
        while (spec.count is None or index < spec.count) and (deadline is None or time.monotonic() < deadline):
            yield index, None
            index += 1

    async def finish(self) -> None:
        if self.unanswered is not None:
            await self.unanswered.settled()
        if self.spec.report_html is not None:
            path = write_html_report(self.ctx.resolve, self.spec, self.summary(), self.stats.latency)
            self.ctx.emit("job.note", data={"report_html": str(path)})

    def summary(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "mode": "open" if spec.rate else "closed",
            "offered_rate_per_s": spec.rate,
            "concurrency": spec.concurrency,
            **self.stats.summary(self.unanswered.count if self.unanswered is not None else 0),
        }


def write_html_report(resolve: Callable[[Path], Path], spec: Any, summary: dict[str, Any], latency: Latency) -> Path:
    """The test's page at `spec.report_html` (a distributed run's coordinator writes the
    merged one of its shares the same way)."""
    mode = f"open loop, {spec.rate:g} msg/s" if spec.rate else "closed loop"
    settings = {
        "server": str(spec.smtp),
        "mode": mode,
        "concurrency": spec.concurrency,
        "messages_per_connection": spec.messages_per_connection or "unlimited",
        "duration_s": spec.duration,
        "count": spec.count,
    }
    path = resolve(spec.report_html)
    write_load_report(path, spec.name, summary, settings, latency.percentile_curve())
    return path
