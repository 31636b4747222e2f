"""Issue 10: a distributed run whose three workers each live in their own network
namespace (tests/servers/netns.py), against a real redis-server and three pyftpdlib
servers that listen on this side of the first veth pair and count their own
connections: 30 mirrors, every one byte-identical, no server above its `hosts:` limit
(the limits hold across machines through the workers' leases in Redis)."""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

import tests.servers.ftp as ftp_servers
from tests.integration.ftp_helpers import REPO, fill, run_cli, tree
from tests.servers.common import require_binary
from tests.servers.ftp import FtpServer, running_pyftpdlib
from tests.servers.netns import NetnsHost, netns_hosts
from tests.servers.redis import redis_server

pytestmark = pytest.mark.timeout(300)

SITES = 30
LIMITS = (2, 3, 4)  # per server: the hosts block's max_connections


@pytest.fixture
def hosts() -> Iterator[list[NetnsHost]]:
    require_binary("/usr/bin/redis-server", "redis-server")
    with netns_hosts(3) as made:
        yield made


@pytest.fixture
def servers(tmp_path: Path, hosts: list[NetnsHost], monkeypatch: pytest.MonkeyPatch) -> Iterator[list[FtpServer]]:
    """pyftpdlib servers on this side of the first pair, which every namespace reaches."""
    monkeypatch.setattr(ftp_servers, "HOST", hosts[0].local)  # start_pyftpdlib listens on HOST
    with ExitStack() as stack:
        started = [stack.enter_context(running_pyftpdlib(tmp_path / f"server{k}")) for k in range(len(LIMITS))]
        for n in range(SITES):
            fill(started[n % len(started)].root / f"site{n}",
                 {f"d{i % 3}/f{i}.bin": os.urandom(2000 + 97 * i + n) for i in range(12)})
        yield started


def site_root(servers: list[FtpServer], n: int) -> Path:
    return servers[n % len(servers)].root / f"site{n}"


def jobs_file(tmp: Path, servers: list[FtpServer]) -> Path:
    hosts = "".join(f"  '{s.host}:{s.port}': {{max_connections: {limit}}}\n" for s, limit in zip(servers, LIMITS))
    jobs = "".join(f"  - {{name: site{n}, kind: ftp.mirror, local: out/site{n}, "
                   f"remote: 'ftp://{servers[n % len(servers)].host}:{servers[n % len(servers)].port}/site{n}/'}}\n"
                   for n in range(SITES))
    path = tmp / "jobs.yaml"
    path.write_text(f"hosts:\n{hosts}jobs:\n{jobs}")
    return path


def test_workers_in_three_namespaces_mirror_thirty_sites_within_each_limit(
    tmp_path: Path, hosts: list[NetnsHost], servers: list[FtpServer], caplog: pytest.LogCaptureFixture
) -> None:
    key = subprocess.run([sys.executable, "-m", "xfer", "worker", "--new-key"], capture_output=True, text=True,
                         cwd=REPO, check=True).stdout.strip().partition("=")[2]
    env = {**os.environ, "XFER_BROKER_KEY": key}
    caplog.set_level(logging.INFO, logger="pyftpdlib")
    with redis_server(host=hosts[0].local) as redis:
        workers = [subprocess.Popen(["ip", "netns", "exec", host.netns, sys.executable, "-m", "xfer", "worker",
                                     "--broker", redis.url], cwd=REPO, env=env,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for host in hosts]
        try:
            code, report, output = run_cli(jobs_file(tmp_path, servers), "--quiet", "--broker", redis.url,
                                           env={"XFER_BROKER_KEY": key})
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(15)
    assert code == 0, output
    for n in range(SITES):
        assert tree(tmp_path / f"out/site{n}") == tree(site_root(servers, n)), f"site{n}"
    assert not list(tmp_path.rglob("*.part"))
    for server, limit in zip(servers, LIMITS):
        assert 1 <= server.peak_connections <= limit, (server.port, server.peak_connections)
    assert sorted(job["name"] for job in report["jobs"]) == sorted(f"site{n}" for n in range(SITES))
    assert {job["status"] for job in report["jobs"]} == {"ok"}
    # Every FTP connection came from a namespace, none from this side.
    clients = set(re.findall(r"^(\d+\.\d+\.\d+\.\d+):\d+-", "\n".join(caplog.messages), re.MULTILINE))
    assert clients and clients <= {host.address for host in hosts}, clients
