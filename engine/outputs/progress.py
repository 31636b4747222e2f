"""Live progress on a terminal: a rich display (plain log lines otherwise are in
`engine/outputs/plain.py`, which does not import rich).

Both read the event stream and the report's running totals; neither changes them."""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from xfer.events import Event
from xfer.outputs.plain import SUMMARY_COLUMNS, human_bytes, log_line, rate_and_eta, summary_lines, summary_rows
from xfer.pool import HostPool
from xfer.report import Report


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
            self.console.print(log_line(event), highlight=False, markup=False)
        if not event.name == "task.progress":
            self.live.update(self._render())

    def _render(self) -> Group:
        now = time.monotonic()
        jobs = Table(title=None, expand=False, box=None, padding=(0, 1))
        for column in ("job", "kind", "done", "failed", "bytes", "rate", "eta", "status"):
            jobs.add_column(column, justify="right" if column in ("done", "failed", "bytes", "rate", "eta") else "left")
        for job in self.report.jobs.values():
            rate, eta = rate_and_eta(job, now)
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


def print_summary(report: Report, console: Console) -> None:
    """The table printed at the end of a run on a terminal."""
    table = Table(title="xfer run summary", box=None, padding=(0, 1))
    for column in SUMMARY_COLUMNS:
        table.add_column(column)
    for row in summary_rows(report):
        table.add_row(*row)
    console.print(table)
    for line, is_error in summary_lines(report):
        console.print(line, style="red" if is_error else None, highlight=False, markup=False)
