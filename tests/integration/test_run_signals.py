"""A real `xfer run` stopped by SIGINT/SIGTERM mid-transfer: the exit code says so,
the report is written, and no partial file sits under a final name."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers.ftp import PYFTPD_PASSWORD, running_pyftpdlib

REPO = Path(__file__).resolve().parents[2]


def _slow_data_handler() -> type:
    """pyftpdlib's own throttled data channel: 256 KiB/s per transfer."""
    from pyftpdlib.handlers import ThrottledDTPHandler

    return type("SlowDTP", (ThrottledDTPHandler,), {"read_limit": 256 * 1024, "write_limit": 256 * 1024})


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_mid_mirror(tmp_path: Path, signum: signal.Signals, code: int) -> None:
    source = tmp_path / "root"
    source.mkdir()
    for index in range(8):
        (source / f"file{index}.bin").write_bytes(os.urandom(1024 * 1024))
    with running_pyftpdlib(tmp_path, handler_attrs={"dtp_handler": _slow_data_handler()}) as server:
        jobs = tmp_path / "jobs.yaml"
        jobs.write_text(
            "defaults: {grace_period: 0.5}\n"
            f"hosts:\n  '127.0.0.1:{server.port}':\n    max_connections: 2\n"
            "jobs:\n"
            f"  - {{name: slow, kind: ftp.mirror, remote: '{server.url('/', with_password=True)}', local: dest}}\n"
        )
        report_path = tmp_path / "report.json"
        proc = subprocess.Popen(
            [sys.executable, "-m", "xfer", "run", str(jobs), "--report", str(report_path)],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        dest = tmp_path / "dest"
        deadline = time.monotonic() + 60
        while not any(dest.glob("*.part")) and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == code, err
    report = json.loads(report_path.read_text())
    assert report["stopped_by"] == signum.name
    assert report["jobs"][0]["status"] == "cancelled"
    finished = [path for path in dest.iterdir() if not path.name.endswith(".part")]
    assert len(finished) < 8
    for path in finished:
        assert path.read_bytes() == (source / path.name).read_bytes()
    assert PYFTPD_PASSWORD not in out + err + report_path.read_text()
