"""Live progress on a terminal: a rich display (plain log lines otherwise are in
`engine/outputs/plain.py`, which does not import rich).

Both read the event stream and the report's running totals; neither changes them."""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.console import Console, Group
from rich.live import Live
from rich.progress import BarColumn, Progress, TaskID, TextColumn
from rich.table import Table

from xfer.events import Event
from xfer.outputs.plain import SUMMARY_COLUMNS, log_line, summary_lines, summary_rows
from xfer.outputs.tally import Tallies
from xfer.outputs.wording import human_bytes
from xfer.pool import HostPool
from xfer.report import JobReport, Report

#: Seconds between redraws for events that do not change a job's state.
REDRAW_EVERY = 0.25


def _bars(console: Console) -> Progress:
    """A progress bar per job: done/planned and rate in the kind's unit, bytes, time left.
    Figures come from the tallies (not rich's own speed estimate), as in the log lines."""
    def text(field: str, **options: str) -> TextColumn:  # job names are not rich markup
        return TextColumn(f"{{task.fields[{field}]}}", markup=False, **options)  # type: ignore[arg-type]

    return Progress(
        text("job"), text("kind", style="cyan"), BarColumn(), text("done", justify="right"),
        text("rate", justify="right"), text("bytes", justify="right"), text("eta"), text("status"),
        console=console,
        auto_refresh=False,
    )


class LiveProgress:
    """The rich display: a progress bar per job and a row per host (connections in use / limit)."""

    def __init__(self, report: Report, pools: Iterable[HostPool], console: Console | None = None) -> None:
        self.report = report
        self.pools = pools
        self.console = console or Console(stderr=True)
        self.tallies = Tallies()
        self.bars = _bars(self.console)
        self._bar_of: dict[str, TaskID] = {}
        self._drawn = 0.0
        self.live = Live(self._render(), console=self.console, refresh_per_second=4, transient=False)

    def __enter__(self) -> LiveProgress:
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.update(self._render())
        self.live.__exit__(*exc)  # type: ignore[arg-type]

    def __call__(self, event: Event) -> None:
        self.tallies(event)
        if event.name in ("job.error", "pool.shrink") or (
            event.name == "task.finished" and event.data["status"] == "failed"
        ):
            self.console.print(log_line(event), highlight=False, markup=False)
        now = time.monotonic()
        if not event.name.startswith("task.") or now - self._drawn >= REDRAW_EVERY:
            self._drawn = now
            self.live.update(self._render())

    def _update_bar(self, job: JobReport, now: float) -> None:
        shown = self.tallies.progress(job, now)
        fields = {
            "job": job.name, "kind": job.kind, "done": f"{shown.done_text} {shown.unit}", "rate": shown.rate_text,
            "bytes": human_bytes(job.bytes) if job.bytes else "", "eta": "" if job.finished else f"eta {shown.eta_text}",
            "status": job.final_status() if job.finished else "",
        }
        bar = self._bar_of.get(job.name)
        if bar is None:  # not started: an indeterminate (pulsing) bar until the total is known
            bar = self._bar_of[job.name] = self.bars.add_task(job.name, total=None, start=False, **fields)
        fraction = 1.0 if job.finished else shown.fraction
        if fraction is not None:
            self.bars.start_task(bar)
            self.bars.update(bar, total=1.0, completed=fraction, **fields)
        else:
            self.bars.update(bar, **fields)

    def _render(self) -> Group:
        now = time.monotonic()
        for job in self.report.jobs.values():
            self._update_bar(job, now)
        hosts = Table(box=None, padding=(0, 1))
        hosts.add_column("host")
        hosts.add_column("connections", justify="right")
        for pool in self.pools:
            limit = f" (of {pool.configured_limit})" if pool.limit < pool.configured_limit else ""
            hosts.add_row(pool.endpoint, f"{pool.in_use}/{pool.limit}{limit}")
        return Group(self.bars, hosts)


def print_summary(report: Report, console: Console) -> None:
    """The table printed at the end of a run on a terminal, then each job in words."""
    table = Table(title="xfer run summary", box=None, padding=(0, 1))
    for column in SUMMARY_COLUMNS:
        table.add_column(column)
    for row in summary_rows(report):
        table.add_row(*row)
    console.print(table)
    for line, is_error in summary_lines(report):
        console.print(line, style="red" if is_error else None, highlight=False, markup=False)
