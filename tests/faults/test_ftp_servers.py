"""Items 3, 4 and 5: servers that limit, fail or hang, and a destination that fills up.

- 421 above a server's own limit (vsftpd `max_per_ip`, a server we did not write):
  xfer lowers its pool for that host, completes, and the report says so. The same
  with pyftpdlib is tests/integration/test_ftp_tls_limits.py.
- a server that is down, one that refuses the login, one that accepts and then never
  answers (tests/faults/proxy.py in `hang` mode): one clear error each, every other
  job of the run completes, exit code 1.
- a full disk (a 2 MiB tmpfs as the destination; root only): the failing files are
  reported, no partial file under a final name, good files intact, exit code 1."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

from tests.faults.proxy import FaultProxy
from tests.integration.ftp_helpers import fill, job_report, run_cli, tree, write_jobs
from tests.servers.common import free_port, require_root
from tests.servers.ftp import running_pyftpdlib, running_vsftpd


def test_server_limit_below_ours_vsftpd(tmp_path: Path) -> None:
    with running_vsftpd(tmp_path / "srv", max_per_ip=2) as server:
        fill(server.root, {f"f{i:02d}.bin": os.urandom(40_000) for i in range(30)})
        server.chown_root()
        path = write_jobs(
            tmp_path,
            f"""
defaults: {{retry_backoff: 0.1}}
hosts:
  "{server.host}:{server.port}": {{max_connections: 6}}
jobs:
  - {{name: m, kind: ftp.mirror, remote: "{server.url('/', with_password=True)}", local: out}}
""",
        )
        code, report, output = run_cli(path)
        assert code == 0, output
        assert tree(tmp_path / "out") == tree(server.root)
    host = report["hosts"][f"{server.host}:{server.port}"]
    assert host["shrinks"] and "421" in host["shrinks"][0]
    assert host["limit"] <= 2 and host["peak"] <= 2
    assert job_report(report, "m")["tasks"] == {"ok": 30, "failed": 0, "cancelled": 0, "planned": 30}


def test_down_refusing_and_hanging_servers_fail_alone(tmp_path: Path) -> None:
    down = free_port()
    with running_pyftpdlib(tmp_path / "srv") as server, FaultProxy(server.port) as hanging:
        hanging.hang = True
        fill(server.root, {"a.txt": "a", "sub/b.txt": "b"})
        good = server.url("/", with_password=True)
        wrong = f"ftp://{server.user}:wrong-pw@127.0.0.1:{server.port}/"
        path = write_jobs(
            tmp_path,
            f"""
defaults: {{retries: 1, retry_backoff: 0.05, connect_timeout: 2}}
jobs:
  - {{name: good, kind: ftp.mirror, remote: "{good}", local: out}}
  - {{name: down, kind: ftp.mirror, remote: "ftp://127.0.0.1:{down}/", local: out-down}}
  - {{name: login, kind: ftp.mirror, remote: "{wrong}", local: out-login}}
  - {{name: hang, kind: ftp.mirror, remote: "ftp://127.0.0.1:{hanging.port}/", local: out-hang}}
""",
        )
        code, report, output = run_cli(path)
    assert code == 1, output
    assert job_report(report, "good")["status"] == "ok"
    assert tree(tmp_path / "out") == {"a.txt": b"a", "sub/b.txt": b"b"}
    errors = {name: job_report(report, name)["errors"] for name in ("down", "login", "hang")}
    assert all(len(found) == 1 for found in errors.values()), errors
    assert "refused" in errors["down"][0].lower() and f"127.0.0.1:{down}" in errors["down"][0]
    assert "530" in errors["login"][0]
    assert "took over 2s" in errors["hang"][0] or "no answer" in errors["hang"][0]
    assert job_report(report, "login")["retries"] == 0  # a refused login is not retried
    assert report["totals"]["jobs_failed"] == 3
    assert "wrong-pw" not in output + str(report)
    assert "Traceback" not in output


@contextlib.contextmanager
def _tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], check=True)
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def test_disk_full_reports_failures_and_keeps_good_files(tmp_path: Path) -> None:
    require_root("mounting a small tmpfs")
    with running_pyftpdlib(tmp_path / "srv") as server, _tmpfs(tmp_path / "disk", "2m") as disk:
        good = {f"small{i}.txt": os.urandom(20_000) for i in range(5)}
        fill(server.root, good)
        path = write_jobs(
            tmp_path,
            f"""
hosts:
  "127.0.0.1:{server.port}": {{max_connections: 1}}
jobs:
  - {{name: m, kind: ftp.mirror, remote: "{server.url('/', with_password=True)}", local: {disk / 'out'}}}
""",
        )
        code, report, output = run_cli(path)
        assert code == 0, output
        before = tree(disk / "out")
        assert before == good
        fill(server.root, {f"zbig{i}.bin": os.urandom(700_000) for i in range(4)})
        code, report, output = run_cli(path)
        after = {name: data for name, data in tree(disk / "out").items() if not name.endswith(".part")}
        leftovers = [p.name for p in (disk / "out").iterdir() if p.name.endswith(".part")]
    assert code == 1, output
    job = job_report(report, "m")
    failed = {task["label"] for task in job["task_list"] if task["status"] == "failed"}
    assert failed and all(name.startswith("zbig") for name in failed)
    assert all("No space left" in task["error"] for task in job["task_list"] if task["status"] == "failed")
    assert all(task["attempts"] == 1 for task in job["task_list"])  # a full disk is not retried
    for name, content in after.items():  # whatever has a final name is whole
        assert content == (server.root / name).read_bytes()
    assert {name: after[name] for name in good} == good
    assert set(after) - set(good) == {f"zbig{i}.bin" for i in range(4)} - failed
    assert leftovers == [], leftovers  # no partial file left to fill the disk
    state = sqlite3.connect(tmp_path / ".xfer/state.db")
    assert state.execute("PRAGMA integrity_check").fetchone() == ("ok",)
