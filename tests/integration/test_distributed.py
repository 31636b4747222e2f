"""Distributed runs (`xfer run --workers N` / `--broker`) against real servers: a real
redis-server, pyftpdlib counting its own connections, aiosmtpd as the SMTP sink."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ftp_helpers import REPO, fill, tree
from tests.integration.test_mail_load import Sink, sink  # noqa: F401 - the sink fixture
from tests.servers.common import require_binary
from tests.servers.ftp import running_pyftpdlib
from tests.servers.redis import redis_server

SITES = 6


@pytest.fixture(autouse=True)
def _redis_installed() -> None:
    require_binary("/usr/bin/redis-server", "redis-server")


def xfer(*args: str, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xfer", *args], capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, **(env or {})}, timeout=timeout)


def run_report(jobs: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    report = jobs.with_suffix(".report.json")
    report.unlink(missing_ok=True)
    proc = xfer("run", str(jobs), "--report", str(report), "--quiet", *args, env=env)
    return proc.returncode, (json.loads(report.read_text()) if report.exists() else {}), proc.stderr


def mirror_jobs(tmp: Path, url: str, limit: int) -> Path:
    lines = [f"  - {{name: site{n}, kind: ftp.mirror, remote: '{url}site{n}/', local: out/site{n}}}"
             for n in range(SITES)]
    path = tmp / "jobs.yaml"
    path.write_text(f"defaults: {{max_connections_per_host: {limit}}}\njobs:\n" + "\n".join(lines) + "\n")
    return path


@pytest.fixture
def ftp_sites(tmp_path: Path) -> Iterator[Any]:
    with running_pyftpdlib(tmp_path) as server:
        for n in range(SITES):
            fill(server.root / f"site{n}", {f"d{d}/f{i}.bin": os.urandom(3000 + i) for d in range(3) for i in range(15)})
        yield server


def test_workers_mirror_every_site_within_the_host_limit(tmp_path: Path, ftp_sites: Any) -> None:
    jobs = mirror_jobs(tmp_path, f"ftp://127.0.0.1:{ftp_sites.port}/", limit=3)
    code, report, stderr = run_report(jobs, "--workers", "2")
    assert code == 0, stderr
    for n in range(SITES):
        assert tree(tmp_path / f"out/site{n}") == tree(ftp_sites.root / f"site{n}")
    assert ftp_sites.peak_connections <= 3, "peak"  # counted by the server, across both workers
    assert sorted(job["name"] for job in report["jobs"]) == [f"site{n}" for n in range(SITES)]
    assert {job["status"] for job in report["jobs"]} == {"ok"}
    assert sum(job["tasks"]["ok"] for job in report["jobs"]) == SITES * 45
    assert not list(tmp_path.rglob("*.part"))

    code, again, stderr = run_report(jobs, "--workers", "2")  # state and files: incremental
    assert code == 0, stderr
    assert sum(job["bytes"] for job in again["jobs"]) == 0


def test_a_load_test_splits_over_workers_and_merges_exactly(tmp_path: Path, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    jobs = tmp_path / "load.yaml"
    jobs.write_text(
        "jobs:\n  - name: load\n    kind: mail.load\n"
        f"    smtp: smtp://127.0.0.1:{port}\n    count: 600\n    concurrency: 6\n"
        "    envelope: {from: load@example.test, to: [sink@example.test]}\n"
        "    report_html: load.html\n"
    )
    code, report, stderr = run_report(jobs, "--workers", "3")
    assert code == 0, stderr
    assert handler.messages == 600
    summary = report["jobs"][0]["summary"]
    assert summary["sent"] == summary["accepted"] == 600
    assert summary["concurrency"] == 6
    from xfer.mail.latency import Latency

    shares = summary["share_latency_hdr"]
    assert len(shares) == 3
    every = Latency()
    for encoded in shares:
        every.add_encoded(encoded)
    assert every.count == 600
    assert summary["latency_ms"] == every.summary()
    assert report["jobs"][0]["tasks"]["ok"] == 600
    page = (tmp_path / "load.html").read_text()  # one page, of the merged test
    assert "600 sent, 600 accepted" in page and "<svg" in page
    assert not list(tmp_path.glob("*.part"))


def test_passwords_never_reach_redis_in_clear(tmp_path: Path, ftp_sites: Any) -> None:
    """Every command Redis receives during a run over a password-protected broker
    (MONITOR) is free of the FTP password, which sits in the job file's hosts block."""
    secret = ftp_sites.password
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        f"hosts:\n  127.0.0.1:\n    user: {ftp_sites.user}\n    password: {secret}\n"
        f"jobs:\n  - {{name: site0, kind: ftp.mirror, remote: 'ftp://127.0.0.1:{ftp_sites.port}/site0/', local: out}}\n"
    )
    with redis_server(password="broker-pass") as redis:
        key = xfer("worker", "--new-key").stdout.strip().partition("=")[2]
        env = {"XFER_BROKER_KEY": key}
        worker = subprocess.Popen([sys.executable, "-m", "xfer", "worker", "--broker", redis.url], cwd=REPO,
                                  env={**os.environ, **env})
        try:
            with redis.monitor() as commands:
                code, report, stderr = run_report(jobs, "--broker", redis.url, env=env)
        finally:
            worker.terminate()
            worker.wait(10)
        assert code == 0, stderr
        assert tree(tmp_path / "out") == tree(ftp_sites.root / "site0")
        assert any("xfer:units" in line for line in commands)  # the monitor saw the run
        assert not [line for line in commands if secret in line]
        assert secret not in redis.cli("--scan") + json.dumps(report)


def test_a_missing_broker_key_is_one_clear_line(tmp_path: Path) -> None:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text("jobs:\n  - {name: a, kind: ftp.mirror, remote: 'ftp://127.0.0.1:9/', local: out}\n")
    env = {k: v for k, v in os.environ.items() if k != "XFER_BROKER_KEY"}
    proc = subprocess.run([sys.executable, "-m", "xfer", "run", str(jobs), "--broker", "redis://127.0.0.1:9/0"],
                          capture_output=True, text=True, cwd=REPO, env=env, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "xfer: XFER_BROKER_KEY is not set: the coordinator and every worker need the same key "
        "(make one with `xfer worker --new-key`)"
    ]




def test_host_leases_are_shared_shrunk_for_all_and_lapse_when_not_renewed(monkeypatch: pytest.MonkeyPatch) -> None:
    """The gate against a real redis-server: two workers' gates share a host's limit; a
    421 (`shrink`) lowers it for both; leases nobody renews (a dead worker) lapse."""
    import asyncio

    from redis.asyncio import Redis

    from xfer.distributed import gate as gate_module

    async def scenario(url: str) -> None:
        redis = Redis.from_url(url)
        one, two = gate_module.RedisHostGate(redis, "run"), gate_module.RedisHostGate(redis, "run")
        assert [await g.try_enter("h:21", 3) for g in (one, two, one, two)] == [True, True, True, False]
        two.shrink("h:21")  # refused while 3 were held: the server's limit is 2
        await two.written()  # two workers' writes are not ordered between them
        one.leave("h:21")
        await one.written()
        assert not await two.try_enter("h:21", 3)  # 2 held, shrunk limit 2
        one.leave("h:21")
        await one.written()
        assert await two.try_enter("h:21", 3)
        monkeypatch.setattr(gate_module, "LEASE_SECONDS", 0.3)
        dead = gate_module.RedisHostGate(redis, "run")
        assert await dead.try_enter("other:21", 1)
        assert not await two.try_enter("other:21", 1)
        dead._renewer.cancel()  # type: ignore[union-attr]  # the worker died: nobody renews
        await asyncio.sleep(0.5)
        assert await two.try_enter("other:21", 1)
        await redis.aclose()

    with redis_server() as server:
        asyncio.run(scenario(server.url))


def test_a_worker_that_waits_for_a_host_gets_its_share_of_it() -> None:
    """Workers share a host as forked processes do: while one waits, another that holds
    more than its share is told to hand connections over, and takes no more beyond its
    share. (Before, a worker that came first kept the whole limit while its units had
    work: `others_waiting` and `over_share` were always False.)"""
    import asyncio

    from redis.asyncio import Redis

    from xfer.distributed.gate import RedisHostGate

    async def told(gate: RedisHostGate, expected: bool) -> bool:
        """Whether `gate` says another worker waits, once that is `expected` (its view is
        refreshed every `poll[1]` seconds) or after 5 s."""
        for _ in range(100):
            if gate.others_waiting("h:21", 4) == expected:
                break
            await asyncio.sleep(0.05)
        return gate.others_waiting("h:21", 4)

    async def scenario(url: str) -> list[bool]:
        redis = Redis.from_url(url)
        first, second = RedisHostGate(redis, "run"), RedisHostGate(redis, "run")
        seen = [all([await first.try_enter("h:21", 4) for _ in range(4)])]  # the first worker takes the host
        seen.append(await second.try_enter("h:21", 4))  # full
        second.waiting("h:21", 1)
        await second.written()
        seen += [await told(first, True), first.over_share("h:21", 4)]  # once its view caught up
        first.leave("h:21")
        first.leave("h:21")
        await first.written()
        seen.append(await second.try_enter("h:21", 4))  # one of the two given back
        seen.append(await first.try_enter("h:21", 4))  # the first holds its share of 2 while the second waits
        seen.append(await second.try_enter("h:21", 4))  # the second's share
        second.waiting("h:21", 0)
        await second.written()
        seen.append(await told(first, False))
        for gate in (first, second):
            await gate.close()
        await redis.aclose()
        return seen

    with redis_server() as server:
        assert asyncio.run(scenario(server.url)) == [True, False, True, True, True, False, True, False]


def test_a_shrink_is_not_overtaken_by_the_leave_that_follows_it() -> None:
    """A refused connect shrinks the host's limit to what is open less the refused one,
    then gives the refused one's lease back (`engine/pool.py`): both are background
    writes of one worker, and the leave landing first made the limit one lower still."""
    import asyncio

    from redis.asyncio import Redis

    from xfer.distributed.gate import RedisHostGate

    async def scenario(url: str) -> list[bool]:
        redis = Redis.from_url(url)
        outcomes = []
        for attempt in range(8):
            gate, endpoint = RedisHostGate(redis, "run"), f"h{attempt}:21"
            for _ in range(3):
                await gate.try_enter(endpoint, 4)
            gate.shrink(endpoint)  # the third was refused: the server takes 2
            gate.leave(endpoint)
            await gate.written()
            outcomes.append(await gate.try_enter(endpoint, 4))  # 2 held, limit 2: no
            gate.leave(endpoint)
            await gate.written()
            outcomes.append(await gate.try_enter(endpoint, 4))  # 1 held: yes
            await gate.close()
        await redis.aclose()
        return outcomes

    with redis_server() as server:
        assert asyncio.run(scenario(server.url)) == [False, True] * 8


def test_a_lease_asked_for_by_a_cancelled_opener_is_given_back() -> None:
    """Cancelled while its request is on the way (its job ended, a stop), an opener must
    not leave a lease in Redis that nobody holds: the host would stay one connection
    short for every worker until the lease lapsed."""
    import asyncio

    from redis.asyncio import Redis

    from xfer.distributed.gate import RedisHostGate, lease_key

    async def scenario(url: str) -> list[int]:
        redis = Redis.from_url(url)
        await redis.ping()  # connected: the request goes out at the first step
        left = []
        for steps in range(12):
            gate = RedisHostGate(redis, "run")
            asking = asyncio.ensure_future(gate.try_enter("h:21", 5))
            for _ in range(steps):
                await asyncio.sleep(0)
            asking.cancel()
            try:
                await asking
            except asyncio.CancelledError:
                pass
            await gate.close()  # waits for what it still gives back
            left.append(await redis.zcard(lease_key("h:21")))
            await redis.delete(lease_key("h:21"))
        await redis.aclose()
        return left

    with redis_server() as server:
        assert asyncio.run(scenario(server.url)) == [0] * 12
