"""Summaries in words: figures people read (10,000; 2.1 ms; 303.6 KiB), a kind's own
wording found by kind, the generic sentence for any other, and progress in the kind's unit.
The sentences of the real kinds are checked on real runs (tests/integration/test_summary_words.py)."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import Any

import pytest
from rich.console import Console

from xfer.events import Event
from xfer.job import Job
from xfer.kinds import register, unregister
from xfer.outputs.plain import PlainLog, print_plain_summary
from xfer.outputs.progress import LiveProgress
from xfer.outputs.tally import Tallies
from xfer.outputs.wording import count, describe, figure, human_bytes, human_duration, milliseconds
from xfer.report import JobReport, Report


def test_figures_read_as_people_write_them() -> None:
    assert count(10_000) == "10,000"
    assert [figure(value) for value in (3540.4, 18.46, 0.5)] == ["3,540", "18.5", "0.5"]
    assert [milliseconds(value) for value in (0.42, 2.1, 3.0, 41.2, 1250.0, None)] == [
        "0.42 ms", "2.1 ms", "3.0 ms", "41 ms", "1.25 s", "-"]
    assert [human_bytes(value) for value in (512, 310_882, 3 * 1024**3)] == ["512 B", "303.6 KiB", "3.0 GiB"]
    assert [human_duration(value) for value in (0.358, 12.34, 125, 3720)] == ["0.36 s", "12.3 s", "2 min 5 s", "1 h 2 min"]


def _job(kind: str, summary: dict[str, Any], ok: int = 0, failed: int = 0, nbytes: int = 0) -> JobReport:
    job = JobReport("j", kind=kind, summary=summary, bytes=nbytes, started=100.0, finished=102.0)
    job.counts.update(ok=ok, failed=failed)
    return job


def test_mail_load_names_codes_rates_and_percentiles() -> None:
    summary = {
        "mode": "open", "offered_rate_per_s": 3600.0, "sent": 10_000, "accepted": 9_995, "rejected": 2, "failed": 3,
        "late_starts": 0, "throughput_per_s": 3540.2, "reply_codes": {"250": 9_995, "421": 2, "550": 2},
        "latency_ms": {"count": 9_995, "p50": 2.104, "p90": 3.01, "p99": 9.8, "p99_9": 30.2, "max_ms": 41.3},
    }
    assert describe(_job("mail.load", summary)) == (
        "10,000 sent, 9,995 accepted, 2 rejected (550), 3 temporary failures (2 with 421, 1 with no reply), "
        "3,540 msg/s (3,600 offered); latency p50 2.1 ms, p90 3.0 ms, p99 9.8 ms, max 41 ms"
    )


def test_unknown_kind_and_kind_without_words_get_the_generic_sentence() -> None:
    job = _job("no.such", {"scanned_items": 1234, "ratio": 0.25, "nested": {"deep": 3, "zero": 0}, "flag": True},
               ok=12, failed=1, nbytes=2048)
    assert describe(job) == "12 items done, 1 failed, 2.0 KiB in 2.00 s (1.0 KiB/s); scanned items 1,234, ratio 0.25, nested deep 3"


class Worded(Job):
    """A kind from elsewhere that words its own summary and names its unit."""

    kind = "test.worded"
    unit = "widgets"

    @staticmethod
    def describe(job: JobReport) -> str:
        return f"{job.summary['made']:,} widgets made"

    def plan(self) -> Any:
        raise NotImplementedError


@pytest.fixture
def worded() -> Iterator[None]:
    register(Worded)
    try:
        yield
    finally:
        unregister(Worded.kind)


def test_a_kind_brings_its_own_words_and_unit(worded: None) -> None:
    report = Report()
    report.jobs["w"] = _job("test.worded", {"made": 1500}, ok=3)
    report.jobs["w"].name = "w"
    out = io.StringIO()
    print_plain_summary(report, out)
    assert "w: 1,500 widgets made" in out.getvalue()
    tallies = Tallies()
    tallies(Event("job.started", job="w", data={"kind": "test.worded"}))
    assert tallies.tally("w").unit == "widgets"


def _finished(job: str, detail: dict[str, Any] | None = None, at: float | None = None) -> Event:
    data = {"status": "ok", "attempts": 1, "duration": 0.0, "detail": detail}
    return Event("task.finished", job=job, task="t", data=data, **({"time": at} if at is not None else {}))


def test_progress_counts_in_the_kinds_unit() -> None:
    """nntp.scan items are chunks that scan many articles; mail.load announces its total
    before its planning ends (an open loop plans its last message at its end)."""
    report, tallies = Report(), Tallies()
    events = [
        Event("job.started", job="scan", data={"kind": "nntp.scan"}),
        Event("job.started", job="load", data={"kind": "mail.load"}),
        Event("job.expected", job="load", data={"tasks": 50}),
        Event("job.expected", job="load", data={"tasks": 30}),  # shares of a distributed test add up
        _finished("scan", {"scanned": 500, "kept": 20}),
        _finished("scan", {"count": 1000, "first": 1, "last": 1000}),  # a GROUP item scans nothing
        *[_finished("load") for _ in range(20)],
    ]
    for event in events:
        report(event)
        tallies(event)
    scan, load = tallies.progress(report.jobs["scan"]), tallies.progress(report.jobs["load"])
    assert (scan.unit, scan.done, scan.total, scan.fraction) == ("articles", 500, None, None)
    assert (load.unit, load.done_text, load.fraction) == ("msg", "20/80", 0.25)
    assert load.rate_text.endswith(" msg/s") and load.eta is not None


def test_live_display_shows_a_bar_per_job_in_its_unit() -> None:
    report = Report()
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=160, color_system=None)
    with LiveProgress(report, [], console) as live:
        for event in (Event("job.started", job="[red]load", data={"kind": "mail.load"}),
                      Event("job.expected", job="[red]load", data={"tasks": 80}),
                      *[_finished("[red]load") for _ in range(40)]):
            report(event)
            live(event)
    shown = screen.getvalue()
    assert "[red]load" in shown  # a job name is not rich markup
    assert "40/80 msg" in shown and "msg/s" in shown and "━" in shown


def test_a_finished_jobs_rate_is_over_its_items_not_the_work_after_them() -> None:
    """mail.load writes its HTML report after its last message: that time is no message's."""
    report, tallies = Report(), Tallies()
    for event in (Event("job.started", job="load", data={"kind": "mail.load"}, time=10.0),
                  *[_finished("load", at=10.0 + n / 100) for n in range(1, 101)],
                  Event("job.finished", job="load", data={"status": "ok"}, time=14.0)):
        report(event)
        tallies(event)
    report.jobs["load"].started = 10.0
    assert tallies.progress(report.jobs["load"]).rate_text == "100 msg/s"


def test_log_lines_show_progress_in_the_kinds_unit() -> None:
    report, stream = Report(), io.StringIO()
    log = PlainLog(report, stream, interval=0)
    for event in (Event("job.started", job="load", data={"kind": "mail.load"}),
                  Event("job.expected", job="load", data={"tasks": 80}), *[_finished("load") for _ in range(20)]):
        report(event)
        log(event)
    assert re.search(r"load: 20/80 msg done, 0 B, [\d.,]+ msg/s, eta [\d.]+ s$", stream.getvalue(), re.M), stream.getvalue()


def test_a_summary_the_wording_cannot_read_gets_the_generic_sentence() -> None:
    """A report of another version (`xfer report`) may lack a figure: still a sentence."""
    assert describe(_job("mail.load", {"sent": 3}, ok=3)) == "3 msg done, in 2.00 s; sent 3"
    assert describe(_job("nntp.scan", {}, ok=4)).startswith("4 items done")  # items are chunks, not articles
