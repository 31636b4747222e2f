"""The coordinator's view: workers' unit events turned into the events of one run.

A job split into shares must look like one job: one `job.started`, a `job.planned`
with the total, one `job.finished` once every share ended, with the shares' summaries
merged (`mail.load`: counts added, latency percentiles from the sum of the shares'
HDR histograms — exact, never an average of percentiles). A unit that runs again
(its worker died) starts over: its earlier attempt is kept aside, and the report is
rebuilt at the end from the last attempt of every unit (`replay`)."""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from xfer.distributed.units import Unit
from xfer.events import Event, EventBus

_STATUS_RANK = {"ok": 0, "cancelled": 1, "failed": 2}


@dataclass
class _Attempt:
    id: str
    worker: str = ""
    events: list[Event] = field(default_factory=list)
    ended: str | None = None  # unit.end's status


@dataclass
class _UnitState:
    unit: Unit
    attempts: list[_Attempt] = field(default_factory=list)

    @property
    def current(self) -> _Attempt | None:
        return self.attempts[-1] if self.attempts else None


class JobMerger:
    """Merges the job events of the shares of each job into the bus."""

    def __init__(self, units: Iterable[Unit], bus: EventBus) -> None:
        self.bus = bus
        self.shares: dict[str, int] = {}
        self.units: dict[str, Unit] = {}  # the first unit of each job
        for unit in units:
            self.shares[unit.job] = unit.shares
            self.units.setdefault(unit.job, unit)
        self.started: set[str] = set()
        self.planned: dict[str, dict[int, int]] = defaultdict(dict)
        self.finished: dict[str, dict[int, Event]] = defaultdict(dict)
        self.kind: dict[str, str] = {}

    def forward(self, unit: Unit, event: Event) -> None:
        name, job = event.name, event.job or unit.job
        if name == "job.started":
            self.kind[job] = event.data.get("kind", "")
            if job not in self.started:
                self.started.add(job)
                self.bus.emit(name, job=job, data=event.data, time=event.time)
        elif name == "job.planned" and unit.shares > 1:
            self.planned[job][unit.share] = event.data["tasks"]
            self.bus.emit(name, job=job, data={"tasks": sum(self.planned[job].values())}, time=event.time)
        elif name == "job.finished":
            self.finished[job][unit.share] = event
            if len(self.finished[job]) == unit.shares:
                self._finish(job, list(self.finished[job].values()))
        else:
            self.bus.publish(event)

    def _finish(self, job: str, ends: list[Event]) -> None:
        status = max((end.data["status"] for end in ends), key=lambda s: _STATUS_RANK.get(s, 1))
        summaries = [end.data.get("summary") or {} for end in ends]
        merge = SUMMARY_MERGERS.get(self.kind.get(job, ""))
        summary = merge(summaries) if merge and len(summaries) > 1 else summaries[0]
        unit = self.units[job]
        if unit.whole is not None and getattr(unit.whole, "report_html", None) and status != "cancelled":
            self._write_load_report(unit, summary)
        self.bus.emit("job.finished", job=job, data={"status": status, "summary": summary},
                      time=max(end.time for end in ends))

    def _write_load_report(self, unit: Unit, summary: dict[str, Any]) -> None:
        """A split load test's page, from the merged summary (its shares wrote none)."""
        from xfer.kinds.mail_load import write_html_report
        from xfer.mail.latency import Latency

        latency = Latency()
        latency.add_encoded(summary["latency_hdr"])
        try:
            path = write_html_report(unit.file.resolve, unit.whole, summary, latency)
        except OSError as exc:
            self.bus.emit("job.error", job=unit.job, error=f"report_html: {exc.strerror or exc}")
        else:
            self.bus.emit("job.note", job=unit.job, data={"report_html": str(path)})

    def unfinished(self) -> list[str]:
        return [job for job, shares in self.shares.items() if len(self.finished[job]) < shares]


class RunMerger:
    """Every unit's attempts; forwards the current attempt's events as they come."""

    def __init__(self, units: list[Unit], bus: EventBus) -> None:
        self.units = {unit.id: _UnitState(unit) for unit in units}
        self.bus = bus
        self.jobs = JobMerger(units, bus)
        self.ran_again: dict[str, list[str]] = {}  # unit id -> workers of its attempts

    def handle(self, header: dict[str, Any], events: list[Event]) -> None:
        state = self.units.get(header.get("unit", ""))
        if state is None:
            return
        attempt = state.current
        if attempt is None or attempt.id != header["attempt"]:
            if attempt is not None and any(a.id == header["attempt"] for a in state.attempts):
                return  # a late batch of an attempt already superseded
            attempt = _Attempt(header["attempt"])
            state.attempts.append(attempt)
            if len(state.attempts) > 1:
                self.ran_again[state.unit.id] = [a.worker for a in state.attempts]
        for event in events:
            if event.name == "unit.begin":
                attempt.worker = event.data.get("worker", "")
            elif event.name == "unit.end":
                attempt.ended = event.data.get("status", "done")
            elif event.name == "unit.error":
                error = Event("job.error", state.unit.job, error=event.data.get("error"), time=event.time)
                attempt.events.append(error)
                self.jobs.forward(state.unit, error)
            elif event.name != "unit.abandoned":
                attempt.events.append(event)
                self.jobs.forward(state.unit, event)

    @property
    def done(self) -> bool:
        return all(s.current is not None and s.current.ended is not None for s in self.units.values())

    def not_begun(self) -> list[Unit]:
        return [s.unit for s in self.units.values() if s.current is None]

    def replay(self, bus: EventBus) -> None:
        """The last attempt of every unit, into `bus` (a fresh report's)."""
        jobs = JobMerger([s.unit for s in self.units.values()], bus)
        for state in self.units.values():
            if state.current is not None:
                for event in state.current.events:
                    jobs.forward(state.unit, event)
        self.note_reruns(bus)

    def note_reruns(self, bus: EventBus) -> None:
        for unit_id, workers in self.ran_again.items():
            job = self.units[unit_id].unit.job
            bus.emit("job.note", job=job, data={"unit_ran_again": unit_id, "attempts": len(workers),
                                                 "workers": workers})


def merge_load_summaries(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """mail.load shares as one test: counts added, percentiles from the added histograms."""
    from xfer.mail.latency import Latency

    latency = Latency()
    for summary in summaries:
        latency.add_encoded(summary["latency_hdr"])
    merged: dict[str, Any] = {"mode": summaries[0]["mode"]}
    rates = [s["offered_rate_per_s"] for s in summaries if s.get("offered_rate_per_s")]
    merged["offered_rate_per_s"] = round(sum(rates), 6) if rates else None
    for key in ("concurrency", "sent", "accepted", "rejected", "failed", "late_starts", "recipients_refused", "bytes"):
        merged[key] = sum(s.get(key) or 0 for s in summaries)
    elapsed = max(s.get("elapsed_s") or 0.0 for s in summaries)
    merged["elapsed_s"] = elapsed
    merged["throughput_per_s"] = round(merged["accepted"] / elapsed, 2) if elapsed > 0 else None
    for key in ("reply_codes", "errors"):
        total: Counter[str] = Counter()
        for summary in summaries:
            total.update(summary.get(key) or {})
        merged[key] = dict(sorted(total.items()))
    samples: dict[str, list[str]] = {}
    for summary in summaries:
        for kind, texts in (summary.get("error_samples") or {}).items():
            kept = samples.setdefault(kind, [])
            kept.extend(t for t in texts if t not in kept and len(kept) < 3)
    merged["error_samples"] = samples
    merged["latency_ms"] = latency.summary()
    merged["latency_buckets"] = latency.buckets()
    merged["latency_hdr"] = latency.encode()
    merged["share_latency_hdr"] = [summary["latency_hdr"] for summary in summaries]  # to check the sum
    merged["timeline"] = _merge_timelines([s.get("timeline") or [] for s in summaries])
    return merged


def _merge_timelines(timelines: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per-second rows added up; a second's p50/p99/max is the highest of the shares'
    (an upper bound: the shares kept no per-second histograms to add)."""
    rows: dict[int, dict[str, Any]] = {}
    for timeline in timelines:
        for row in timeline:
            merged = rows.setdefault(row["t"], {"t": row["t"]})
            for key, value in row.items():
                if key == "t" or value is None:
                    continue
                if key.endswith("_ms"):
                    merged[key] = max(merged.get(key, value), value)
                else:
                    merged[key] = merged.get(key, 0) + value
    return [rows[t] for t in sorted(rows)]


def merge_counts(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Shares of a tree (`ftp.mirror` shares): numbers added, flags all true, the rest
    as the first share has it."""
    merged = dict(summaries[0])
    for summary in summaries[1:]:
        for key, value in summary.items():
            if isinstance(value, bool):
                merged[key] = bool(merged.get(key, True)) and value
            elif isinstance(value, (int, float)):
                merged[key] = merged.get(key, 0) + value
            else:
                merged.setdefault(key, value)
    return merged


SUMMARY_MERGERS: dict[str, Callable[[list[dict[str, Any]]], dict[str, Any]]] = {
    "mail.load": merge_load_summaries,
    "ftp.mirror": merge_counts,
}
