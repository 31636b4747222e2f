"""Progress in each kind's own unit, for the live display and the log lines: files,
messages, articles — where the report counts items (tasks).

A subscriber to the event stream, like the report: `task.finished` adds one unit per
item done, or what the item's result says under the kind's `unit_count` (an NNTP chunk
scanned 500 articles); `job.expected` (data: tasks) is the total a kind knows before its
planning ends, such as an open-loop load test's rate x duration, whose last message is
planned only at its end (the shares of a distributed test each announce theirs: they
add up). No rich here."""

from __future__ import annotations

import time
from dataclasses import dataclass

from xfer.events import Event
from xfer.outputs.wording import DEFAULT_UNIT, figure, human_duration, kind_attribute
from xfer.report import JobReport


@dataclass(slots=True)
class Tally:
    unit: str = DEFAULT_UNIT
    #: The key of an item's result that says how many units it did; None: one per item.
    count_key: str | None = None
    units: int = 0
    #: Items the kind announced before its planning ended (`job.expected`).
    expected: int | None = None
    #: When the last item ended: a finished job's rate is over its items, not over the
    #: work after them (a load test's HTML report takes a second or two).
    last: float | None = None


@dataclass(frozen=True, slots=True)
class Progress:
    """One job's progress as shown: `done` of `total` units (None: not known yet),
    `fraction` of its items done (None: unknown), rate per second and time left."""

    unit: str
    done: int
    total: int | None
    fraction: float | None
    rate: float
    eta: float | None

    @property
    def done_text(self) -> str:
        return f"{self.done:,}/{self.total:,}" if self.total is not None else f"{self.done:,}"

    @property
    def rate_text(self) -> str:
        return f"{figure(self.rate)} {self.unit}/s" if self.done else "-"

    @property
    def eta_text(self) -> str:
        return human_duration(self.eta) if self.eta is not None else "-"


class Tallies:
    """Units done per job, from the events."""

    def __init__(self) -> None:
        self.jobs: dict[str, Tally] = {}

    def __call__(self, event: Event) -> None:
        name = event.name
        if name == "task.finished":
            tally = self.tally(event.job or "")
            tally.last = event.time
            if event.data["status"] == "ok":
                detail = event.data.get("detail") or {}
                tally.units += 1 if tally.count_key is None else int(detail.get(tally.count_key) or 0)
        elif name == "job.started":
            kind = event.data.get("kind", "")
            self.jobs[event.job or ""] = Tally(
                str(kind_attribute(kind, "unit", DEFAULT_UNIT)), kind_attribute(kind, "unit_count", None)
            )
        elif name == "job.expected":  # each share of a distributed load test announces its part
            tally = self.tally(event.job or "")
            tally.expected = (tally.expected or 0) + int(event.data["tasks"])

    def tally(self, job: str) -> Tally:
        return self.jobs.setdefault(job, Tally())

    def progress(self, job: JobReport, now: float | None = None) -> Progress:
        """Where `job` stands at monotonic time `now` (its end, once it ended)."""
        tally = self.tally(job.name)
        end = (tally.last or job.finished) if job.finished is not None else now or time.monotonic()
        seconds = max(1e-6, end - job.started)
        items_total = job.planned if job.planned is not None else tally.expected
        items_done = sum(job.counts.values())
        fraction = min(1.0, items_done / items_total) if items_total else None
        eta = None
        if fraction and job.finished is None:
            eta = seconds * (1 - fraction) / fraction
        total = items_total if tally.count_key is None else (tally.units if job.finished is not None else None)
        return Progress(tally.unit, tally.units, total, fraction, tally.units / seconds, eta)
