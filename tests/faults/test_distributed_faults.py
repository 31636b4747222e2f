"""Issue 10: faults of distributed runs against a real redis-server and pyftpdlib (which
counts its own connections): a worker killed with SIGKILL mid-unit, Redis stopped and
restarted mid-run, SIGTERM to the coordinator, and a `--workers N` coordinator killed
with SIGKILL (its workers and private redis-server must not stay behind).

The mirrors are slowed by the hosts block's `rate_limit` so that each fault lands
mid-unit; the tests wait for the server to count a connection before they strike."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ftp_helpers import REPO, fill, tree
from tests.servers.common import require_binary
from tests.servers.ftp import FtpServer, running_pyftpdlib
from tests.servers.redis import RedisServer, redis_server

pytestmark = pytest.mark.timeout(300)

SITES = 4
FILES = 8
LIMIT = 2


@pytest.fixture(autouse=True)
def _redis_installed() -> None:
    require_binary("/usr/bin/redis-server", "redis-server")


@pytest.fixture
def ftp(tmp_path: Path) -> Iterator[FtpServer]:
    with running_pyftpdlib(tmp_path) as server:
        for n in range(SITES):
            fill(server.root / f"site{n}", {f"d{i % 2}/f{i}.bin": os.urandom(40_000 + i) for i in range(FILES)})
        yield server


@pytest.fixture
def broker() -> Iterator[tuple[RedisServer, dict[str, str]]]:
    """A redis-server and the environment (XFER_BROKER_KEY) of its coordinator and workers."""
    key = subprocess.run([sys.executable, "-m", "xfer", "worker", "--new-key"], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.strip().partition("=")[2]
    with redis_server() as redis:
        yield redis, {**os.environ, "XFER_BROKER_KEY": key}


def jobs_file(tmp: Path, server: FtpServer, rate: int | None, grace: float = 10.0) -> Path:
    """SITES mirrors of one server, LIMIT connections, `rate` bytes/s per worker
    (None: unlimited, for the re-run after a fault)."""
    lines = [f"  - {{name: site{n}, kind: ftp.mirror, remote: 'ftp://{server.host}:{server.port}/site{n}/', "
             f"local: out/site{n}}}" for n in range(SITES)]
    path = tmp / "jobs.yaml"
    path.write_text(f"defaults: {{max_connections_per_host: {LIMIT}, grace_period: {grace}}}\n"
                    + (f"hosts:\n  {server.host}:\n    rate_limit: {rate}\n" if rate else "")
                    + "jobs:\n" + "\n".join(lines) + "\n")
    return path


def start_worker(url: str, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    """An `xfer worker`; its output goes to `log` (read it when a test fails)."""
    with log.open("ab") as out:
        return subprocess.Popen([sys.executable, "-m", "xfer", "worker", "--broker", url], cwd=REPO, env=env,
                                stdout=out, stderr=subprocess.STDOUT)


def start_run(jobs: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    report = jobs.with_suffix(".report.json")
    report.unlink(missing_ok=True)
    return subprocess.Popen([sys.executable, "-m", "xfer", "run", str(jobs), "--report", str(report), "--quiet",
                             *args], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(run: subprocess.Popen[str], jobs: Path, timeout: float = 180) -> tuple[int, dict[str, Any], str]:
    _, err = run.communicate(timeout=timeout)
    report = jobs.with_suffix(".report.json")
    return run.returncode, (json.loads(report.read_text()) if report.exists() else {}), err


def wait_for(condition: Callable[[], bool], timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"waited {timeout:g} s for {what}"
        time.sleep(0.05)


def mid_run(server: FtpServer, run: subprocess.Popen[str]) -> None:
    """Return once the run has connections open and has transferred a while."""
    wait_for(lambda: server.open_connections > 0 or run.poll() is not None, what="a first connection")
    time.sleep(1.5)
    assert run.poll() is None, "the run ended before the fault: slow it down more"


def mirrors_identical(tmp: Path, server: FtpServer) -> None:
    for n in range(SITES):
        assert tree(tmp / f"out/site{n}") == tree(server.root / f"site{n}"), f"site{n}"
    assert not list(tmp.rglob("*.part"))


def assert_broker_error(report: dict[str, Any], err: str, words: str) -> None:
    """Every job the run could not finish failed with the same one line naming the broker."""
    assert "Traceback" not in err
    failed = [job for job in report["jobs"] if job["status"] != "ok"]
    assert failed
    for job in failed:
        assert len(job["errors"]) == 1 and "\n" not in job["errors"][0], job["errors"]
        assert job["errors"][0].startswith("broker redis://127.0.0.1:") and words in job["errors"][0]


def stopped(processes: list[subprocess.Popen[bytes]]) -> None:
    for process in processes:
        if process.poll() is None:
            process.terminate()
            process.wait(15)


def test_a_worker_killed_mid_unit_its_units_run_again(tmp_path: Path, ftp: FtpServer, broker: Any) -> None:
    redis, env = broker
    jobs = jobs_file(tmp_path, ftp, rate=150_000)
    first = start_worker(redis.url, env, tmp_path / "workers.log")  # alone at first: it takes every unit
    workers = [first]
    try:
        run = start_run(jobs, "--broker", redis.url, env=env)
        mid_run(ftp, run)
        workers.append(start_worker(redis.url, env, tmp_path / "workers.log"))
        first.send_signal(signal.SIGKILL)
        code, report, err = finish(run, jobs)
    finally:
        stopped(workers)
    assert code == 0, err
    mirrors_identical(tmp_path, ftp)
    assert ftp.peak_connections <= LIMIT  # the dead worker's leases held until they lapsed
    assert {job["status"] for job in report["jobs"]} == {"ok"}
    # Last attempts only: a unit run again skips the files its first attempt completed.
    assert not any(job["tasks"]["failed"] or job["tasks"]["cancelled"] for job in report["jobs"])
    again = [note["unit_ran_again"] for job in report["jobs"] for note in job["notes"] if "unit_ran_again" in note]
    assert again, "the report names no unit that ran twice"
    assert set(again) <= {f"site{n}" for n in range(SITES)}


@pytest.fixture
def one_worker(broker: Any, tmp_path: Path) -> Iterator[tuple[RedisServer, dict[str, str]]]:
    """The broker with one worker running for the whole test."""
    redis, env = broker
    worker = start_worker(redis.url, env, tmp_path / "workers.log")
    try:
        yield redis, env
    finally:
        stopped([worker])


def run_through(fault: Callable[[], None], tmp: Path, ftp: FtpServer, redis: RedisServer,
                env: dict[str, str]) -> tuple[int, dict[str, Any], str]:
    """A slow run with `fault` done to Redis mid-run; the coordinator's patience is 3 s."""
    jobs = jobs_file(tmp, ftp, rate=100_000)
    run = start_run(jobs, "--broker", redis.url, env={**env, "XFER_BROKER_PATIENCE": "3"})
    mid_run(ftp, run)
    fault()
    return finish(run, jobs, timeout=60)


def test_redis_restarted_mid_run_ends_with_one_clear_error(tmp_path: Path, ftp: FtpServer, one_worker: Any) -> None:
    """A Redis that comes back empty (no persistence) lost the queued units: the
    coordinator says so in one line and exits non-zero instead of waiting forever; the
    worker serves the next run, which completes the work."""
    redis, env = one_worker

    def restart() -> None:
        redis.stop()
        time.sleep(1.0)
        redis.start()

    code, report, err = run_through(restart, tmp_path, ftp, redis, env)
    assert code != 0, err
    assert_broker_error(report, err, "restarted without the run's queue")

    jobs = jobs_file(tmp_path, ftp, rate=None)
    code, report, err = finish(start_run(jobs, "--broker", redis.url, env=env), jobs)
    assert code == 0, err
    mirrors_identical(tmp_path, ftp)


def test_redis_gone_for_good_ends_after_the_patience(tmp_path: Path, ftp: FtpServer, one_worker: Any) -> None:
    redis, env = one_worker
    code, report, err = run_through(redis.stop, tmp_path, ftp, redis, env)
    assert code != 0, err
    assert_broker_error(report, err, "unreachable for 3s")


def test_sigterm_to_the_coordinator_stops_every_unit(tmp_path: Path, ftp: FtpServer, broker: Any) -> None:
    redis, env = broker
    grace = 2.0
    jobs = jobs_file(tmp_path, ftp, rate=100_000, grace=grace)
    workers = [start_worker(redis.url, env, tmp_path / "workers.log") for _ in range(2)]
    try:
        run = start_run(jobs, "--broker", redis.url, env=env)
        mid_run(ftp, run)
        run.send_signal(signal.SIGTERM)
        code, report, err = finish(run, jobs, timeout=grace + 15)
        assert code == 143, err
        assert report["stopped_by"] == "SIGTERM"
        assert "Traceback" not in err
        # The workers live on, but their units stopped: the server sees every connection close.
        wait_for(lambda: ftp.open_connections == 0, timeout=grace + 15, what="the units to stop")
        assert all(worker.poll() is None for worker in workers)

        code, report, err = finish(start_run(jobs_file(tmp_path, ftp, rate=None), "--broker", redis.url, env=env), jobs)
    finally:
        stopped(workers)
    assert code == 0, err
    mirrors_identical(tmp_path, ftp)


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_a_killed_local_coordinator_leaves_no_worker_or_redis_behind(tmp_path: Path, ftp: FtpServer) -> None:
    jobs = jobs_file(tmp_path, ftp, rate=100_000)
    with (tmp_path / "run.log").open("wb") as log:  # a pipe nobody reads once the test kills its reader would block
        run = subprocess.Popen([sys.executable, "-m", "xfer", "run", str(jobs), "--quiet", "--workers", "2"],
                               cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    mid_run(ftp, run)  # type: ignore[arg-type]
    children = _children(run.pid)
    try:
        names = sorted(Path(f"/proc/{pid}/comm").read_text().strip() for pid in children)
        assert len(children) == 3 and "redis-server" in names, names  # two workers and the private broker
        run.send_signal(signal.SIGKILL)
        run.wait(30)
        wait_for(lambda: not any(_alive(pid) for pid in children), timeout=30, what="workers and redis to leave")
    finally:
        for pid in filter(_alive, children):
            os.kill(pid, signal.SIGKILL)


def test_idle_workers_declare_the_queue_again_after_redis_restarted_empty(tmp_path: Path, broker: Any) -> None:
    """Without its consumer group every read failed (NOGROUP): the workers logged a
    traceback ten times a second until the next coordinator made the group."""
    redis, env = broker
    log = tmp_path / "workers.log"
    workers = [start_worker(redis.url, env, log) for _ in range(2)]
    try:
        wait_for(lambda: "xfer-workers" in redis.cli("xinfo", "groups", "xfer:units"), what="the queue")
        redis.stop()
        redis.start()
        wait_for(lambda: "xfer-workers" in redis.cli("xinfo", "groups", "xfer:units"), timeout=30,
                 what="the workers to declare the queue again")
    finally:
        stopped(workers)
    assert "NOGROUP" not in log.read_text()
