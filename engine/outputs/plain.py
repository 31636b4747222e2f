"""Plain-text output for non-terminals (cron, CI, logs): log lines while a run goes
on, and the summary at the end. No rich here: a run that does not draw on a terminal
does not pay for importing it."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO

from xfer.events import Event
from xfer.report import JobReport, Report


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def rate_and_eta(job: JobReport, now: float) -> tuple[str, str]:
    elapsed = max(1e-6, (job.finished or now) - job.started)
    rate = job.bytes / elapsed
    done = sum(job.counts.values())
    eta = "-"
    if job.planned and done and job.finished is None:
        remaining = (job.planned - done) * elapsed / done
        eta = f"{remaining:.0f}s"
    return (f"{human_bytes(rate)}/s" if job.bytes else "-"), eta


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
    line per job every `interval` seconds."""

    _LOGGED = {"job.started", "job.planned", "job.error", "task.retry", "pool.shrink", "job.finished", "run.stopping"}

    def __init__(self, report: Report, stream: IO[str] | None = None, interval: float = 10.0) -> None:
        self.report = report
        self.stream = stream or sys.stderr
        self.interval = interval
        self._last = time.monotonic()

    def __call__(self, event: Event) -> None:
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
                    rate, eta = rate_and_eta(job, now)
                    total = job.planned if job.planned is not None else "?"
                    self._write(f"{job.name}: {job.counts['ok']}/{total} done, {human_bytes(job.bytes)}, {rate}, eta {eta}")

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
            job.name, job.kind, data["status"], str(job.counts["ok"]), str(job.counts["failed"]),
            human_bytes(job.bytes), f"{data['duration']:.2f}s",
        ))
    return rows


def summary_lines(report: Report, max_errors: int = 20) -> list[tuple[str, bool]]:
    """The lines under the table, each with whether it is an error: each job's
    figures, then its first errors."""
    lines = []
    for job in report.jobs.values():
        figures = summary_figures(job.summary)
        if figures:
            lines.append((f"{job.name}: {figures}", False))
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


def summary_figures(summary: dict[str, object], limit: int = 14) -> str:
    """A job's own figures in one line: non-zero scalars, nested ones one level deep."""
    parts: list[str] = []
    for key, value in summary.items():
        if isinstance(value, dict):
            parts.extend(
                f"{key}.{inner}={inner_value}"
                for inner, inner_value in value.items()
                if isinstance(inner_value, (int, float, str)) and inner_value not in (0, "")
            )
        elif isinstance(value, (int, float, str)) and not isinstance(value, bool) and value not in (0, ""):
            parts.append(f"{key}={value}")
    return " ".join(parts[:limit]) + (" ..." if len(parts) > limit else "")
