"""Item 2: data connections cut mid-transfer are resumed with REST, and the files end
identical to the source (compared by hash).

The cuts come from tests/faults/proxy.py between xfer and a real pyftpdlib server: it
rewrites the server's EPSV/PASV replies so the data connections go through it too,
and resets a transfer once it has carried N bytes."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from tests.faults.proxy import Cut, FaultProxy
from tests.integration.ftp_helpers import job_report, run_cli, write_jobs
from tests.servers.ftp import running_pyftpdlib


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_cut_transfers_resume_with_rest(tmp_path: Path) -> None:
    # No size is a multiple of the cut: a file cut three times at 400 kB would have
    # arrived whole before its reset, and a whole `.part` is fetched again from 0.
    sizes = {"a.bin": 1_500_000, "b.bin": 1_250_000, "c.bin": 900_000, "small.txt": 5_000}
    with running_pyftpdlib(tmp_path / "srv") as server:
        for name, size in sizes.items():
            (server.root / name).write_bytes(os.urandom(size))
        with FaultProxy(server.port, ftp=True) as proxy:
            proxy.faults.extend(Cut(after=400_000, data=True) for _ in range(4))
            url = server.url("/", with_password=True).replace(f":{server.port}/", f":{proxy.port}/")
            path = write_jobs(
                tmp_path,
                f"""
defaults: {{retry_backoff: 0.05}}
hosts:
  "127.0.0.1:{proxy.port}": {{max_connections: 2}}
jobs:
  - {{name: m, kind: ftp.mirror, remote: "{url}", local: out}}
""",
            )
            code, report, output = run_cli(path)
            cuts = proxy.stats.cuts
    assert code == 0, output
    job = job_report(report, "m")
    assert cuts == 4  # every fault fired: the transfers really were cut
    assert job["retries"] >= 4
    resumed = [task for task in job["task_list"] if (task.get("detail") or {}).get("resumed_from")]
    assert resumed, job["task_list"]
    assert job["summary"]["resumed"] == len(resumed)
    for name in sizes:
        assert _digest(tmp_path / "out" / name) == _digest(server.root / name)
    assert not list((tmp_path / "out").glob("*.part"))
    # Resumed, never fetched again from the start: every byte came over exactly once.
    assert job["bytes"] == sum(sizes.values())
