"""Item 1: `kill -9` of `xfer run` in the middle of a 2,000-file mirror on 8
connections, then a re-run: the mirror ends byte-identical to the source, no `.part`
remains, the state DB is sound, and no file that was complete before the kill is
transferred again (interrupted ones are resumed or fetched again, which is fine).

Real processes: xfer as a subprocess, pyftpdlib (in this process, throttled per
transfer by its own ThrottledDTPHandler so that the kill lands mid-run)."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.integration.ftp_helpers import REPO, job_report, run_cli, tree, write_jobs
from tests.servers.ftp import running_pyftpdlib

FILES = 2000


def _throttled() -> type:
    from pyftpdlib.handlers import ThrottledDTPHandler

    return type("Throttled", (ThrottledDTPHandler,), {"read_limit": 1024 * 1024, "write_limit": 1024 * 1024})


def _source(root: Path) -> None:
    for index in range(FILES):
        path = root / f"d{index % 20:02d}" / f"f{index:04d}.dat"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(500 + index * 7 % 6000))
    for index in range(6):  # large ones: likely in flight (as .part) at the kill
        (root / f"d{19 - index // 2:02d}" / f"big{index}.bin").write_bytes(os.urandom(3_000_000))


def _finals(dest: Path) -> set[str]:
    return {p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file() and not p.name.endswith(".part")}


def _big_part(dest: Path) -> bool:
    """A large file is half-way: the kill will interrupt a transfer with data to resume."""
    return any(0 < part.stat().st_size < 3_000_000 for part in dest.rglob("big*.part"))


def test_kill_9_mid_mirror_then_rerun(tmp_path: Path) -> None:
    with running_pyftpdlib(tmp_path / "srv", handler_attrs={"dtp_handler": _throttled()}) as server:
        _source(server.root)
        path = write_jobs(
            tmp_path,
            f"""
hosts:
  "127.0.0.1:{server.port}": {{max_connections: 8}}
jobs:
  - {{name: m, kind: ftp.mirror, remote: "{server.url('/', with_password=True)}", local: out}}
""",
        )
        dest = tmp_path / "out"
        proc = subprocess.Popen(
            [sys.executable, "-m", "xfer", "run", str(path), "--quiet"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if dest.exists() and len(_finals(dest)) >= 300 and _big_part(dest):
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the first run ended before the kill: make the source bigger"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)

        parts = {p.relative_to(dest).as_posix()[: -len(".part")] for p in dest.rglob("*.part")}
        complete = {name for name in _finals(dest) if (dest / name).read_bytes() == (server.root / name).read_bytes()}
        assert complete == _finals(dest)  # whatever bears a final name is whole
        assert 0 < len(complete) < FILES + 6
        state = tmp_path / ".xfer" / "state.db"
        assert sqlite3.connect(state).execute("PRAGMA integrity_check").fetchone() == ("ok",)

        code, report, output = run_cli(path)
    assert code == 0, output
    assert tree(dest) == tree(server.root)
    assert not list(dest.rglob("*.part"))
    job = job_report(report, "m")
    fetched = {task["label"] for task in job["task_list"]}
    assert not fetched & complete, sorted(fetched & complete)[:10]
    assert len(fetched) + len(complete) == FILES + 6
    assert parts <= fetched  # each interrupted file is finished by the re-run
    assert job["summary"]["resumed"] >= 1  # the large file cut by the kill went on from its .part
    assert sqlite3.connect(state).execute("PRAGMA integrity_check").fetchone() == ("ok",)
