"""The running tally of a session load test (IMAP or POP3), in constant memory.

Every command a session sends ends with one reply: OK (`+OK`), a refusal the server
said out loud (NO, BAD, BYE, `-ERR`), `timeout`, or `error` (the connection failed
without a reply). Replies are counted per command; latency of every command, refused
or not, goes into that command's HDR histogram (a NO is as much a server answer as an
OK). LOGIN is timed from the TCP connect to the logged-in reply (greeting, STARTTLS
and CAPABILITY included): what a user waits for. A per-second series counts commands
by name (and refusals as `NAME REPLY`), so logins/s and commands/s over time are in
the report."""

from __future__ import annotations

import time
from collections import Counter
from typing import Any

from xfer.errors import describe
from xfer.mail.latency import Latency, TimeSeries
from xfer.protocols.imap import reply_of

OK = "OK"
#: Distinct error texts kept per command, to say what went wrong without a log.
_SAMPLES = 3


def reply_for(exc: BaseException) -> str:
    """How a command that raised `exc` ended: the server's refusal, timeout or error."""
    reply = reply_of(exc)
    if reply is not None:
        return reply
    return "timeout" if isinstance(exc, TimeoutError) else "error"


class SessionStats:
    def __init__(self) -> None:
        self.start = time.monotonic()
        self.last_end: float | None = None
        self.started = self.completed = self.failed = self.late_starts = 0
        self.latency: dict[str, Latency] = {}
        self.replies: dict[str, Counter[str]] = {}
        self.samples: dict[str, list[str]] = {}
        self.series = TimeSeries(self.start)
        self._timeline: list[dict[str, Any]] | None = None

    def begin(self, at: float) -> None:
        """The test starts now: elapsed time and the series count from here."""
        self.start = self.series.start = at

    def command(self, name: str, began: float, error: BaseException | None = None) -> str:
        """Command `name`, sent at monotonic `began`, ended now (raising `error`, if
        given); returns its reply."""
        now = time.monotonic()
        reply = OK if error is None else reply_for(error)
        latency = self.latency.get(name)
        if latency is None:
            latency = self.latency[name] = Latency()
            self.replies[name] = Counter()
        self.replies[name][reply] += 1
        if reply not in ("timeout", "error"):
            latency.record(now - began)
        if error is not None:
            samples = self.samples.setdefault(name, [])
            text = describe(error)
            if len(samples) < _SAMPLES and text not in samples:
                samples.append(text)
        self.series.record(now, name if reply == OK else f"{name} {reply}", None)
        self.last_end = now
        return reply

    def session_started(self, late: bool) -> None:
        self.started += 1
        self.late_starts += late

    def session_ended(self, ok: bool) -> None:
        if ok:
            self.completed += 1
        else:
            self.failed += 1

    def summary(self) -> dict[str, Any]:
        if self._timeline is None:
            self._timeline = self.series.close()
        elapsed = self.last_end - self.start if self.last_end is not None else 0.0
        logins = self.replies.get("LOGIN", Counter())[OK]
        commands = sum(sum(counts.values()) for counts in self.replies.values())
        return {
            "sessions": {"started": self.started, "completed": self.completed, "failed": self.failed,
                         "late_starts": self.late_starts},
            "elapsed_s": round(elapsed, 3),
            "logins": logins,
            "logins_per_s": round(logins / elapsed, 2) if elapsed > 0 else None,
            "commands": commands,
            "commands_per_s": round(commands / elapsed, 2) if elapsed > 0 else None,
            "replies": {name: dict(sorted(counts.items())) for name, counts in sorted(self.replies.items())},
            "latency_ms": {name: latency.summary() for name, latency in sorted(self.latency.items())},
            "error_samples": self.samples,
            "timeline": self._timeline,
        }
