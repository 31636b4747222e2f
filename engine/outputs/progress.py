"""Live progress: a rich display on a terminal, plain log lines otherwise (cron, CI).

Both read the event stream and the report's running totals; neither changes them."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable
from typing import IO

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from engine.events import Event
from engine.pool import HostPool
from engine.report import JobReport, Report


def human_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if count < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def _rate_and_eta(job: JobReport, now: float) -> tuple[str, str]:
    elapsed = max(1e-6, (job.finished or now) - job.started)
    rate = job.bytes / elapsed
    done = sum(job.counts.values())
    eta = "-"
    if job.planned and done and job.finished is None:
        remaining = (job.planned - done) * elapsed / done
        eta = f"{remaining:.0f}s"
    return (f"{human_bytes(rate)}/s" if job.bytes else "-"), eta


class LiveProgress:
    """The rich display: a row per job and a row per host (connections in use / limit)."""

    def __init__(self, report: Report, pools: Iterable[HostPool], console: Console | None = None) -> None:
        self.report = report
        self.pools = pools
        self.console = console or Console(stderr=True)
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self._render())
        self.live.__exit__(*exc)  # type: ignore[arg-type]

    def __call__(self, event: Event) -> None:
        if event.name in ("job.error", "pool.shrink") or (
            event.name == "task.finished" and event.data["status"] == "failed"
        ):
            self.console.print(_log_line(event), highlight=False, markup=False)
        if not event.name == "task.progress":
            self.live.update(self._render())

    def _render(self) -> Group:
        now = time.monotonic()
        jobs = Table(title=None, expand=False, box=None, padding=(0, 1))
        for column in ("job", "kind", "done", "failed", "bytes", "rate", "eta", "status"):
            jobs.add_column(column, justify="right" if column in ("done", "failed", "bytes", "rate", "eta") else "left")
        for job in self.report.jobs.values():
            rate, eta = _rate_and_eta(job, now)
            total = str(job.planned) if job.planned is not None else "?"
            jobs.add_row(
                job.name, job.kind, f"{job.counts['ok']}/{total}", str(job.counts["failed"] or ""),
                human_bytes(job.bytes), rate, eta, job.final_status() if job.finished else "running",
            )
        hosts = Table(box=None, padding=(0, 1))
        hosts.add_column("host")
        hosts.add_column("connections", justify="right")
        for pool in self.pools:
            hosts.add_row(pool.endpoint, f"{pool.in_use}/{pool.limit}" + (f" (of {pool.configured_limit})" if pool.limit < pool.configured_limit else ""))
        return Group(jobs, hosts)


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


def _log_line(event: Event) -> str:
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
            self._write(_log_line(event))
        now = time.monotonic()
        if now - self._last >= self.interval:
            self._last = now
            for job in self.report.jobs.values():
                if job.finished is None:
                    rate, eta = _rate_and_eta(job, now)
                    total = job.planned if job.planned is not None else "?"
                    self._write(f"{job.name}: {job.counts['ok']}/{total} done, {human_bytes(job.bytes)}, {rate}, eta {eta}")

    def _write(self, line: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"{stamp} {line}", file=self.stream, flush=True)


def print_summary(report: Report, console: Console) -> None:
    """The table printed at the end of a run, on a terminal or not."""
    table = Table(title="xfer run summary", box=None, padding=(0, 1))
    for column in ("job", "kind", "status", "ok", "failed", "bytes", "time"):
        table.add_column(column)
    for job in report.jobs.values():
        data = job.as_dict()
        table.add_row(
            job.name, job.kind, data["status"], str(job.counts["ok"]), str(job.counts["failed"]),
            human_bytes(job.bytes), f"{data['duration']:.2f}s",
        )
    console.print(table)
    for job in report.jobs.values():
        figures = summary_figures(job.summary)
        if figures:
            console.print(f"{job.name}: {figures}", highlight=False, markup=False)
    for job in report.jobs.values():
        for error in job.errors[:20]:
            console.print(f"{job.name}: {error}", style="red", highlight=False, markup=False)
        if len(job.errors) > 20:
            console.print(f"{job.name}: ... and {len(job.errors) - 20} more errors (see --report)")


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
