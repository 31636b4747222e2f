"""The scheduler's retry policy, timeouts, failure isolation and stopping."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Any


import pytest

from xfer.events import EventBus
from xfer.report import Report
from xfer.scheduler import RunOptions, Scheduler
from xfer.spec import parse_job_text
from tests.conftest import CountingConnector
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
    report, _ = run_jobs(
        tmp_path,
        "jobs: [{name: a, kind: test.probe, count: 20, sleep: 0.01, max_connections: 3, connect: 'ftp://127.0.0.1:9/'}]\n",
    )
    assert report.exit_code == 0
    assert probe_kind.peak_running == 3
    assert CountingConnector.connects == 3  # each worker kept its connection for its items


def test_a_kind_concurrency_above_the_queue_bound_is_honoured(probe_kind: Any, tmp_path: Path) -> None:
    report, _ = run_jobs(
        tmp_path,
        "defaults: {max_connections: 1000}\n"
        "hosts: {'127.0.0.1:9': {max_connections: 400}}\n"
        "jobs: [{name: a, kind: test.probe, count: 600, sleep: 0.2, concurrency: 300, connect: 'ftp://127.0.0.1:9/'}]\n",
    )
    assert report.exit_code == 0
    assert probe_kind.peak_running == 300


@pytest.mark.parametrize("nested", [True, False], ids=["item-takes-its-own-connection", "connection-worker"])
def test_retries_mean_at_most_n_plus_1_attempts(probe_kind: Any, tmp_path: Path, nested: bool) -> None:
    """`retries: 2` is three connects against a server that refuses every one, whether
    the item takes its connection itself (retried there, not again around it) or runs
    on a connection worker."""
    report, _ = run_jobs(
        tmp_path,
        "defaults: {retries: 2, retry_backoff: 0}\n"
        f"jobs: [{{name: a, kind: test.probe, count: 1, nested: {str(nested).lower()}, refuse: true, "
        "connect: 'ftp://127.0.0.1:9/'}]\n",
    )
    assert CountingConnector.connects == 3
    assert report.jobs["a"].errors == ["probe-0: 421 closing"]


def test_the_global_bound_counts_open_connections_idle_ones_included(probe_kind: Any, tmp_path: Path) -> None:
    jobs = "".join(
        f"  - {{name: s{n}, kind: test.probe, count: 6, sleep: 0.01, connect: 'ftp://127.0.0.{n + 1}:21/'}}\n"
        for n in range(8)
    )
    report, scheduler = run_scheduler_text(tmp_path, "defaults: {max_connections: 2}\njobs:\n" + jobs)
    assert report.exit_code == 0
    assert CountingConnector.peak_open == 2
    assert scheduler.pools.peak_open == 2
    assert probe_kind.completed == 48


def test_no_connection_is_opened_for_an_item_another_worker_is_opening_one_for(probe_kind: Any, tmp_path: Path) -> None:
    """Item 1 is planned while item 0 runs, so a second worker starts opening a
    connection for it. Item 0 then ends its connection (a session's LOGOUT): its worker
    must not open another for item 1 as well (in a session load test, a login that no
    session used, counted all the same)."""
    job = ("  - {name: s, kind: test.probe, count: 2, sleep: 0.05, connect: 'ftp://127.0.0.1:21/',"
           " connect_delay: 0.1, close_after: true, plan_gap: 0.12}\n")
    report, _ = run_scheduler_text(tmp_path, "jobs:\n" + job)
    assert report.exit_code == 0
    assert probe_kind.completed == 2
    assert CountingConnector.connects == 2


def test_a_stop_is_bounded_even_for_items_waiting_on_a_lock_of_their_job(probe_kind: Any, tmp_path: Path) -> None:
    """Items that wait on a job's own turnstile are not 'waiting for a connection':
    the end of the grace period cancels them all the same."""
    report = stop_after(tmp_path, "defaults: {grace_period: 0.3}\njobs: [{name: a, kind: test.probe, count: 1000, block: true}]\n")
    assert report.exit_code == 143
    assert report.jobs["a"].counts["ok"] == 0
    assert report.jobs["a"].counts["cancelled"] == report.jobs["a"].planned


def test_running_items_get_their_grace(probe_kind: Any, tmp_path: Path) -> None:
    report = stop_after(
        tmp_path,
        "defaults: {grace_period: 5}\n"
        "jobs: [{name: a, kind: test.probe, count: 3, sleep: 0.5, nested: true, connect: 'ftp://127.0.0.1:9/'}]\n",
    )
    assert report.exit_code == 143
    assert report.jobs["a"].counts["ok"] == 3


def stop_after(tmp_path: Path, text: str, delay: float = 0.2) -> Report:
    """Run `text`, send SIGTERM after `delay`; the run must end within grace + 3 s."""
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    file = parse_job_text(text, str(path), path)
    events = EventBus()
    report = Report()
    events.subscribe(report)

    async def main() -> None:
        scheduler = Scheduler([file], events, RunOptions())
        asyncio.get_running_loop().call_later(delay, scheduler.stop, signal.SIGTERM)
        try:
            await asyncio.wait_for(scheduler.run(), file.defaults.grace_period + delay + 3)
        finally:
            scheduler.close()

    asyncio.run(main())
    return report


def run_scheduler_text(tmp_path: Path, text: str) -> tuple[Report, Scheduler]:
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    return run_scheduler(parse_job_text(text, str(path), path))


def test_sigterm_stops_planning_and_exits_143(probe_kind: Any, tmp_path: Path) -> None:
    report = stop_after(
        tmp_path, "defaults: {grace_period: 5}\njobs: [{name: a, kind: test.probe, count: 2000, sleep: 0.2}]\n", 0.3
    )
    job = report.jobs["a"]
    assert report.exit_code == 143
    assert 0 < job.counts["ok"] < 2000
    assert job.as_dict()["status"] == "cancelled"


class FullGate:
    """A host gate (engine/pool.py HostGate) shared with another process that never lets
    go: `free` leases for this one, then "full". Each answer is a round trip whose
    cancellation unwinds through an await, as a network client's does (redis-py gives
    its connection back to its pool in a `finally`)."""

    poll = (0.02, 0.25)

    def __init__(self, free: int) -> None:
        self.free = free
        self.held = 0

    async def try_enter(self, endpoint: str, limit: int) -> bool:
        try:
            await asyncio.sleep(0.05)
        finally:
            await asyncio.sleep(0.01)
        if self.held < self.free:
            self.held += 1
            return True
        return False

    def leave(self, endpoint: str) -> None:
        self.held -= 1

    def shrink(self, endpoint: str) -> None:
        """Not reached here: nothing refuses."""

    def waiting(self, endpoint: str, count: int) -> None:
        """The other process is not told."""

    def others_waiting(self, endpoint: str, limit: int) -> bool:
        return False

    def over_share(self, endpoint: str, limit: int) -> bool:
        return False


def test_a_run_returns_only_when_every_worker_has_let_go(probe_kind: Any, tmp_path: Path) -> None:
    """Workers still waiting for a lease when their job ends are cancelled; the run
    waits until they have unwound, so nothing of it (a lease, a connection being
    opened) is left behind for the caller to give back too early."""
    text = "jobs: [{name: a, kind: test.probe, count: 20, sleep: 0.002, connect: 'ftp://127.0.0.1:21/'}]\n"
    path = tmp_path / "jobs.yaml"
    path.write_text(text)
    gate = FullGate(free=1)
    report = Report()
    events = EventBus()
    events.subscribe(report)

    async def main() -> list[asyncio.Task[Any]]:
        scheduler = Scheduler([parse_job_text(text, str(path), path)], events, RunOptions(gate=gate))
        await scheduler.run()
        scheduler.close()
        return [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]

    left = asyncio.run(main())
    assert report.exit_code == 0 and probe_kind.completed == 20
    assert left == []
    assert gate.held == 0 and CountingConnector.open_now == 0
