"""The running tally of a load test, in constant memory.

Every message ends as exactly one of accepted (2xx after DATA), rejected (a 5xx
reply at any stage: the server refused it for good) or failed (a 4xx reply — a
temporary failure, retried only as `retries` says — or no reply at all: refused
connection, reset, timeout, TLS), so `sent == accepted + rejected + failed` always
holds. Reply codes of both kinds are counted in `reply_codes`. Latency of accepted
messages goes into an HDR histogram and a per-second time series."""

from __future__ import annotations

import asyncio
import functools
import time
from collections import Counter
from collections.abc import Sequence
from typing import Any

from xfer.errors import XferError, describe
from xfer.mail.latency import Latency, TimeSeries
from xfer.protocols.smtp import SendResult, SmtpConnection, smtp_code

#: Distinct error texts kept per error kind, to say what went wrong without a log.
_SAMPLES_PER_KIND = 3


class LoadStats:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.last_end: float | None = None
        self.sent = self.accepted = self.rejected = self.failed = 0
        self.late_starts = 0
        self.recipients_refused = 0
        self.bytes = 0
        self.reply_codes: Counter[int] = Counter()
        self.errors: Counter[str] = Counter()
        self.samples: dict[str, list[str]] = {}
        self.latency = Latency()
        self.series = TimeSeries(self.start)
        self._timeline: list[dict[str, Any]] | None = None

    def begin(self, at: float) -> None:
        """The test starts now (planning began): elapsed time and the series count from here."""
        self.start = self.series.start = at

    def started(self) -> None:
        self.sent += 1

    def late(self) -> None:
        self.late_starts += 1

    def done(self, began: float, result: SendResult, nbytes: int) -> None:
        now = time.monotonic()
        self.accepted += 1
        self.bytes += nbytes
        self.reply_codes[result.code] += 1
        self.recipients_refused += len(result.refused)
        self.latency.record(now - began)
        self.series.record(now, "accepted", now - began)
        self.last_end = now

    def error(self, exc: BaseException) -> None:
        now = time.monotonic()
        code = smtp_code(exc)
        if code is not None:
            self.reply_codes[code] += 1
        if code is not None and code >= 500:
            self.rejected += 1
            outcome = "rejected"
        else:
            self.failed += 1
            outcome = "failed"
        kind = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        self.errors[kind] += 1
        samples = self.samples.setdefault(kind, [])
        text = describe(exc)
        if len(samples) < _SAMPLES_PER_KIND and text not in samples:
            samples.append(text)
        self.series.record(now, outcome, None)
        self.last_end = now

    def summary(self, unanswered: int = 0) -> dict[str, Any]:
        """The figures; `unanswered` messages (a stopped run's, whose content went out
        and whose reply had not come) count as failed, so the outcomes still add up."""
        if self._timeline is None:
            self._timeline = self.series.close()
        elapsed = self.last_end - self.start if self.last_end is not None else 0.0
        errors, samples = dict(self.errors), self.samples
        if unanswered:
            errors["unanswered"] = unanswered
            samples = {**samples, "unanswered": ["no reply to the message content before the run stopped"]}
        return {
            "sent": self.sent,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "failed": self.failed + unanswered,
            "late_starts": self.late_starts,
            "recipients_refused": self.recipients_refused,
            "bytes": self.bytes,
            "elapsed_s": round(elapsed, 3),
            "throughput_per_s": round(self.accepted / elapsed, 2) if elapsed > 0 else None,
            "reply_codes": {str(code): count for code, count in sorted(self.reply_codes.items())},
            "errors": errors,
            "error_samples": samples,
            "latency_ms": self.latency.summary(),
            "latency_buckets": self.latency.buckets(),
            "latency_hdr": self.latency.encode(),
            "timeline": self._timeline,
        }


class Unanswered:
    """Messages whose content went out and whose final reply is still due (submitted on
    a pipelining session): each reply is counted in `stats` as it comes, and the test
    is over when none is due."""

    __slots__ = ("stats", "count", "_settled")

    def __init__(self, stats: LoadStats) -> None:
        self.stats = stats
        self.count = 0
        self._settled: asyncio.Future[None] | None = None

    async def submit(self, conn: SmtpConnection, sender: str, recipients: Sequence[str], data: bytes, began: float) -> None:
        """Send one message on `conn` (built by `load_message`: CRLF lines, no line
        starting with a dot); its outcome is counted when the reply comes. Raises as
        `SmtpConnection.submit` does (that message is not counted here then)."""
        self.count += 1
        try:
            await conn.submit(sender, recipients, data, functools.partial(self._answered, began, len(data)), framed=True)
        except BaseException:
            self.count -= 1
            raise

    def _answered(self, began: float, nbytes: int, outcome: SendResult | XferError) -> None:
        if isinstance(outcome, SendResult):
            self.stats.done(began, outcome, nbytes)
        else:
            self.stats.error(outcome)
        self.count -= 1
        if not self.count and self._settled is not None and not self._settled.done():
            self._settled.set_result(None)

    async def settled(self) -> None:
        """Return once every submitted message has its outcome (the sessions' command
        timeout bounds the wait)."""
        if self.count:
            self._settled = asyncio.get_running_loop().create_future()
            await self._settled
