"""The scheduler's retry policy, timeouts, failure isolation and stopping."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any


from engine.events import EventBus
from engine.report import Report
from engine.scheduler import RunOptions, Scheduler
from engine.spec import parse_job_text
from tests.jobrun import run_scheduler


def run_jobs(tmp_path: Path, text: str, **options: Any) -> tuple[Report, list[Any]]:
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    seen: list[Any] = []
    report, _ = run_scheduler(parse_job_text(text, str(path), path), seen.append, **options)
    return report, seen


def test_transient_errors_are_retried_with_growing_backoff(probe_kind: Any, tmp_path: Path) -> None:
    report, events = run_jobs(
        tmp_path,
        "defaults: {retries: 3, retry_backoff: 0.01}\n"
        "jobs: [{name: a, kind: test.probe, count: 2, transient: {1: 2}}]\n",
    )
    assert probe_kind.attempts == {0: 1, 1: 3}
    retries = [event for event in events if event.name == "task.retry"]
    assert [event.data["attempt"] for event in retries] == [1, 2]
    assert all(0 <= event.data["delay"] <= 0.01 * 2 ** (event.data["attempt"] - 1) for event in retries)
    assert report.exit_code == 0
    assert report.jobs["a"].counts["ok"] == 2


def test_retries_run_out(probe_kind: Any, tmp_path: Path) -> None:
    report, _ = run_jobs(
        tmp_path,
        "defaults: {retries: 1, retry_backoff: 0}\njobs: [{name: a, kind: test.probe, count: 1, transient: {0: 5}}]\n",
    )
    assert probe_kind.attempts == {0: 2}
    assert report.exit_code == 1
    assert report.jobs["a"].errors == ["probe-0: 451 try again"]


def test_permanent_errors_fail_at_once_and_others_go_on(probe_kind: Any, tmp_path: Path) -> None:
    report, _ = run_jobs(
        tmp_path,
        "defaults: {retries: 5, retry_backoff: 0}\n"
        "jobs:\n  - {name: a, kind: test.probe, count: 4, fail: [2]}\n  - {name: b, kind: test.probe, count: 3}\n",
    )
    assert probe_kind.attempts[2] == 1
    assert report.jobs["a"].counts == {"ok": 3, "failed": 1, "cancelled": 0}
    assert report.jobs["b"].counts["ok"] == 3
    assert report.as_dict()["jobs"][1]["status"] == "ok"
    assert report.exit_code == 1


def test_task_timeout_is_transient_then_fails(probe_kind: Any, tmp_path: Path) -> None:
    report, _ = run_jobs(
        tmp_path,
        "defaults: {retries: 1, retry_backoff: 0}\n"
        "jobs: [{name: a, kind: test.probe, count: 1, sleep: 5, task_timeout: 0.05}]\n",
    )
    assert probe_kind.attempts == {0: 2}
    assert report.jobs["a"].errors == ["probe-0: task took over 0.05s"]


def test_job_max_connections_bounds_concurrency(probe_kind: Any, tmp_path: Path) -> None:
    running = 0
    peak = 0
    original = probe_kind.plan

    class Counting:
        pass

    async def counting_plan(self):  # type: ignore[no-untyped-def]
        async for task in original(self):
            inner = task.run

            async def run(conn: Any, ctx: Any, inner=inner) -> Any:
                nonlocal running, peak
                running += 1
                peak = max(peak, running)
                try:
                    return await inner(conn, ctx)
                finally:
                    running -= 1

            task.run = run
            task.connector = _NullConnector()
            yield task

    probe_kind.plan = counting_plan
    try:
        report, _ = run_jobs(tmp_path, "jobs: [{name: a, kind: test.probe, count: 20, sleep: 0.01, max_connections: 3}]\n")
    finally:
        probe_kind.plan = original
    assert report.exit_code == 0
    assert peak == 3


class _NullConnection:
    def is_usable(self) -> bool:
        return True

    async def close(self) -> None:
        pass


class _NullConnector:
    """Connects to nothing: the pool and the job bound are what is under test."""

    def __init__(self) -> None:
        from engine.urls import parse_url

        self.url = parse_url("ftp://127.0.0.1:9/")
        self.identity = "null"

    async def connect(self) -> _NullConnection:
        return _NullConnection()


def test_sigterm_stops_planning_and_exits_143(probe_kind: Any, tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    text = "defaults: {grace_period: 5}\njobs: [{name: a, kind: test.probe, count: 2000, sleep: 0.2}]\n"
    path.write_text(text)
    file = parse_job_text(text, str(path), path)
    events = EventBus()
    report = Report()
    events.subscribe(report)

    async def main() -> None:
        scheduler = Scheduler([file], events, RunOptions())
        asyncio.get_running_loop().call_later(0.3, scheduler.stop, signal.SIGTERM)
        try:
            await scheduler.run()
        finally:
            scheduler.close()

    asyncio.run(main())
    job = report.jobs["a"]
    assert report.exit_code == 143
    assert 0 < job.counts["ok"] < 2000
    assert job.as_dict()["status"] == "cancelled"
