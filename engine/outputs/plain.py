"""Plain-text output for non-terminals (cron, CI, logs): log lines while a run goes
on, and the summary at the end. No rich here: a run that does not draw on a terminal
does not pay for importing it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

from xfer.events import Event
from xfer.outputs.tally import Tallies
from xfer.outputs.wording import count, describe, human_bytes, human_duration
from xfer.report import Report


_LOG_LINES: dict[str, Callable[[Event], str]] = {
    "job.started": lambda e: f"{e.job}: started ({e.data.get('kind')})",
    "job.planned": lambda e: f"{e.job}: planned {e.data['tasks']} tasks",
    "job.error": lambda e: f"{e.job}: ERROR {e.error}",
    "task.retry": lambda e: f"{e.job}: retry {e.task} in {e.data['delay']:.1f}s: {e.error}",
    "task.finished": lambda e: f"{e.job}: FAILED {e.task}: {e.error}",
    "pool.shrink": lambda e: f"{e.host}: server limit hit, now {e.data['limit']} connections ({e.data['reason']})",
    "job.finished": lambda e: f"{e.job}: finished",
    "run.stopping": lambda e: f"stopping on {e.data['signal']}: running tasks get {e.data['grace_period']:g}s",
}


def log_line(event: Event) -> str:
    format_line = _LOG_LINES.get(event.name)
    return format_line(event) if format_line else event.name


class PlainLog:
    """Log lines for non-terminals: starts, failures, retries, ends, and a progress
    line per job every `interval` seconds, in the kind's unit."""

    _LOGGED = {"job.started", "job.planned", "job.error", "task.retry", "pool.shrink", "job.finished", "run.stopping"}

    def __init__(self, report: Report, stream: IO[str] | None = None, interval: float = 10.0) -> None:
        self.report = report
        self.stream = stream or sys.stderr
        self.interval = interval
        self._last = time.monotonic()
        self.tallies = Tallies()

    def __call__(self, event: Event) -> None:
        self.tallies(event)
        if event.name == "job.finished":
            job = self.report.job(event.job or "")
            self._write(f"{job.name}: finished, {job.final_status()} ({job.counts['ok']} ok, {job.counts['failed']} failed)")
        elif event.name in self._LOGGED or (event.name == "task.finished" and event.data["status"] == "failed"):
            self._write(log_line(event))
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            for job in self.report.jobs.values():
                if job.finished is None:
                    shown = self.tallies.progress(job, now)
                    self._write(
                        f"{job.name}: {shown.done_text} {shown.unit} done, {human_bytes(job.bytes)}, "
                        f"{shown.rate_text}, eta {shown.eta_text}"
                    )

    def _write(self, line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} {line}", file=self.stream, flush=True)


SUMMARY_COLUMNS = ("job", "kind", "status", "ok", "failed", "bytes", "time")


def summary_rows(report: Report) -> list[tuple[str, ...]]:
    """A row per job for the end-of-run table (columns: SUMMARY_COLUMNS)."""
    rows = []
    for job in report.jobs.values():
        data = job.as_dict()
        rows.append((
            job.name, job.kind, data["status"], count(job.counts["ok"]), count(job.counts["failed"]),
            human_bytes(job.bytes), human_duration(data["duration"]),
        ))
    return rows


def summary_lines(report: Report, max_errors: int = 20) -> list[tuple[str, bool]]:
    """The lines under the table, each with whether it is an error: each job in
    words (`engine/outputs/wording.py`), then its first errors."""
    lines = []
    for job in report.jobs.values():
        if job.summary or sum(job.counts.values()):
            lines.append((f"{job.name}: {describe(job)}", False))
    for job in report.jobs.values():
        lines.extend((f"{job.name}: {error}", True) for error in job.errors[:max_errors])
        if len(job.errors) > max_errors:
            lines.append((f"{job.name}: ... and {len(job.errors) - max_errors} more errors (see --report)", False))
    return lines


def print_plain_summary(report: Report, stream: IO[str]) -> None:
    """The end-of-run summary as aligned text columns, then figures and errors."""
    rows = [SUMMARY_COLUMNS, *summary_rows(report)]
    widths = [max(len(row[column]) for row in rows) for column in range(len(SUMMARY_COLUMNS))]
    print("xfer run summary", file=stream)
    for row in rows:
        print(" ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip(), file=stream)
    for line, _ in summary_lines(report):
        print(line, file=stream)
