"""`mail.load`: load-test an SMTP server, closed or open loop.

Closed loop (no `rate`): `concurrency` sessions send back to back, for `count`
messages or `duration` seconds. Open loop (`rate`): messages are due at a constant
rate for `duration` seconds whatever the server does; each message's latency counts
from its scheduled start, so a slow server shows as latency and not as a lower send
rate (no coordinated omission, as in wrk2/k6). At most `concurrency` messages are in
flight; one that starts more than `late_after` seconds after its due time is a late start.

Each task is one message on a pooled SMTP session; a session is closed after
`messages_per_connection` transactions. Sessions come from the per-host pool, so the
host's `max_connections` bounds them too. Errors are counted, not retried (`retries`
defaults to 0 here): a load test measures the server, it does not repair it."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, model_validator

from engine.job import Job, Task, TaskContext
from engine.mail.html import write_load_report
from engine.mail.loadstats import LoadStats
from engine.mail.message import load_message, new_run_id, token_for
from engine.mail.spec import Envelope, SizeChooser, SizeMix, StartTls, smtp_connector
from engine.protocols.smtp import SmtpConnection, SmtpConnector
from engine.spec import JobSpec, url_field
from engine.urls import Url


class MailLoadSpec(JobSpec):
    kind: Literal["mail.load"]
    smtp: url_field("smtp", "smtps")  # type: ignore[valid-type]
    starttls: StartTls = Field("auto", description="true: require STARTTLS; false: never; auto: when offered")
    envelope: Envelope
    recipients: int = Field(1, ge=1, le=1000, description="recipients per message, taken in turn from envelope.to")
    size: SizeMix = Field("4k", description="message size, or a mix {size: weight}")
    concurrency: int = Field(1, ge=1, le=10000, description="sessions (closed loop) / messages in flight (open loop)")
    messages_per_connection: int | None = Field(None, ge=1, description="close a session after this many messages")
    count: int | None = Field(None, ge=1, description="messages to send (closed loop)")
    duration: float | None = Field(None, gt=0, description="seconds to send for")
    rate: float | None = Field(None, gt=0, description="messages per second: makes the test open loop")
    late_after: float = Field(0.01, ge=0, description="seconds after its due time a message counts as a late start")
    timeout: float = Field(60.0, gt=0, description="seconds one SMTP command may take")
    report_html: Path | None = Field(None, description="write latency plots to this self-contained HTML file")
    retries: int | None = Field(0, ge=0, le=100)

    @model_validator(mode="after")
    def _consistent(self) -> MailLoadSpec:
        if self.rate is not None:
            if self.duration is None:
                raise ValueError("an open-loop test (rate) needs a duration")
            if self.count is not None:
                raise ValueError("give rate and duration, or count: the count of an open-loop test is rate x duration")
        elif self.count is None and self.duration is None:
            raise ValueError("give count or duration (closed loop), or rate and duration (open loop)")
        if self.smtp.tls and self.starttls is True:
            raise ValueError("smtps:// is implicit TLS: starttls must be auto or false")
        if self.report_html is not None and self.report_html.suffix.lower() not in (".html", ".htm"):
            raise ValueError("report_html must name an .html file")
        return self


class SendMessage(Task[None]):
    """One message; the session comes from the pool inside `run`, so a refused
    connection is counted as a failed message rather than failing the job."""

    __slots__ = ("job", "index", "due", "slots", "_timed")

    def __init__(self, job: MailLoad, index: int, due: float | None, slots: asyncio.Semaphore) -> None:
        self.job, self.index, self.due, self.slots = job, index, due, slots
        self._timed = False

    @property
    def label(self) -> str:
        return f"message {self.index}"

    async def run(self, conn: None, ctx: TaskContext) -> dict[str, Any] | None:
        job = self.job
        began = self.due if self.due is not None else time.monotonic()
        job.stats.started()
        try:
            result, nbytes = await job.ctx.with_connection(job.connector, self._send, self.label)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - every error is a counted outcome
            job.stats.error(exc)
        else:
            job.stats.done(began, result, nbytes)
            ctx.progress(nbytes)
        finally:
            self.slots.release()
        return None

    async def _send(self, conn: SmtpConnection) -> tuple[Any, int]:
        job = self.job
        if self.due is not None and not self._timed:
            self._timed = True  # a retry on a new session is not a second late start
            if time.monotonic() - self.due > job.spec.late_after:
                job.stats.late()
        data, recipients = job.message(self.index)
        limit = job.spec.messages_per_connection
        try:
            result = await conn.send(job.spec.envelope.sender, recipients, data)
        finally:
            if limit is not None and conn.messages >= limit:
                await conn.close()
        return result, len(data)


class MailLoad(Job):
    kind = "mail.load"
    Spec = MailLoadSpec
    spec: MailLoadSpec

    def __init__(self, spec: Any, ctx: Any) -> None:
        super().__init__(spec, ctx)
        self.stats = LoadStats()
        self.run_id = new_run_id()
        self.sizes = SizeChooser(spec.size)
        self._connector: SmtpConnector | None = None

    @property
    def connector(self) -> SmtpConnector:
        if self._connector is None:
            self._connector = smtp_connector(self.ctx.file, self.spec.smtp, self.spec.starttls, self.spec.timeout)
        return self._connector

    def endpoints(self) -> list[Url]:
        return [self.spec.smtp]

    def message(self, index: int) -> tuple[bytes, list[str]]:
        """Message `index`: its bytes and its recipients (taken in turn from envelope.to)."""
        to = self.spec.envelope.to
        first = index * self.spec.recipients
        recipients = [to[(first + n) % len(to)] for n in range(self.spec.recipients)]
        data = load_message(
            token=token_for(self.run_id, index),
            envelope_from=self.spec.envelope.sender,
            to_header=", ".join(dict.fromkeys(recipients)),
            size=self.sizes.next(),
        )
        return data, recipients

    async def plan(self) -> AsyncIterator[Task[Any]]:
        spec = self.spec
        limit = self.ctx.file.host_limit(spec.smtp)
        if spec.concurrency > limit:
            self.ctx.emit("job.note", data={
                "warning": f"concurrency {spec.concurrency} is capped by the host limit of {limit} connections "
                f"for {spec.smtp.endpoint} (raise hosts.{spec.smtp.host}.max_connections)",
            })
        slots = asyncio.Semaphore(spec.concurrency)
        start = time.monotonic()
        self.stats.begin(start)
        for index, due in self._schedule(start):
            while due is not None and due > time.monotonic():  # the loop may wake a little early
                await asyncio.sleep(due - time.monotonic())
            await slots.acquire()
            yield SendMessage(self, index, due, slots)

    def _schedule(self, start: float) -> Iterator[tuple[int, float | None]]:
        """(index, due time): due times at `rate` (open loop), or None while the count
        or duration lasts (closed loop: the next message goes when a session is free)."""
        spec = self.spec
        if spec.rate is not None:
            total = int(spec.rate * spec.duration)  # type: ignore[operator]
            for index in range(total):
                yield index, start + index / spec.rate
            return
        deadline = start + spec.duration if spec.duration is not None else None
        index = 0
        while (spec.count is None or index < spec.count) and (deadline is None or time.monotonic() < deadline):
            yield index, None
            index += 1

    async def finish(self) -> None:
        if self.spec.report_html is not None:
            path = self.ctx.resolve(self.spec.report_html)
            write_load_report(path, self.spec.name, self.summary(), self._settings())
            self.ctx.emit("job.note", data={"report_html": str(path)})

    def _settings(self) -> dict[str, Any]:
        spec = self.spec
        mode = f"open loop, {spec.rate:g} msg/s" if spec.rate else "closed loop"
        return {
            "server": str(spec.smtp),
            "mode": mode,
            "concurrency": spec.concurrency,
            "messages_per_connection": spec.messages_per_connection or "unlimited",
            "duration_s": spec.duration,
            "count": spec.count,
        }

    def summary(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "mode": "open" if spec.rate else "closed",
            "offered_rate_per_s": spec.rate,
            "concurrency": spec.concurrency,
            **self.stats.summary(),
        }
