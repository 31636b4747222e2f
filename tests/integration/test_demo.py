"""The README's first command: the demo runs against its own servers and exits 0."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_demo(jobs: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xfer.demo", "--jobs", str(jobs)],
        capture_output=True, text=True, cwd=REPO, timeout=300,
    )


def test_demo_runs_and_a_second_run_transfers_nothing(tmp_path: Path) -> None:
    (tmp_path / "jobs").mkdir()
    jobs = tmp_path / "jobs" / "demo.yaml"
    shutil.copy(REPO / "jobs" / "demo.yaml", jobs)
    first = run_demo(jobs)
    assert first.returncode == 0, first.stderr
    output = tmp_path / "demo-output"
    mirrored = sorted(p.relative_to(output / "ftp-mirror") for p in (output / "ftp-mirror").rglob("*") if p.is_file())
    root = output / "ftp-server-root"
    served = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file() and p.relative_to(root).parts[0] != "tmp")
    assert mirrored == served
    assert [p.name for p in (output / "latest").iterdir()] == ["tool-1.10.0.tar.gz"]
    report = json.loads((output / "report.json").read_text())
    assert report["exit_code"] == 0
    assert "demo-password" not in first.stdout + first.stderr + (output / "report.json").read_text()

    second = run_demo(jobs)
    assert second.returncode == 0, second.stderr
    report = json.loads((output / "report.json").read_text())
    assert all(job["tasks"]["ok"] == 0 for job in report["jobs"] if job["kind"].startswith("ftp."))
