"""Helpers for the FTP integration tests: write a job file, run it in-process or as
`xfer run` in a subprocess, and read the report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from xfer.spec import load_job_file
from tests.jobrun import run_scheduler

REPO = Path(__file__).resolve().parents[2]


def write_jobs(tmp: Path, text: str, name: str = "jobs.yaml") -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def run_inprocess(path: Path, **options: Any) -> dict[str, Any]:
    """Run a job file in this process (pyftpdlib runs in a thread of it) -> report dict."""
    report, _ = run_scheduler(load_job_file(path), **options)
    return report.as_dict()


def run_cli(path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict[str, Any], str]:
    """`xfer run FILE --report` in a subprocess -> (exit code, report, stdout+stderr)."""
    report_path = path.with_suffix(".report.json")
    report_path.unlink(missing_ok=True)
    proc = subprocess.run(
        [sys.executable, "-m", "xfer", "run", str(path), "--report", str(report_path), *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, **(env or {})},
        timeout=240,
    )
    report = json.loads(report_path.read_text()) if report_path.exists() else {}
    return proc.returncode, report, proc.stdout + proc.stderr


def job_report(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(job for job in report["jobs"] if job["name"] == name)


def tree(root: Path) -> dict[str, bytes]:
    """Relative path -> content of every regular file under root."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


def fill(root: Path, files: dict[str, bytes | str]) -> None:
    for relative, content in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
