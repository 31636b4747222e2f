"""Run a job file the way users do (`xfer run --report`), in this process, and read
the report back: shared by the integration tests of every kind."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from engine.cli import main


def run_job(tmp_path: Path, text: str) -> tuple[int, dict[str, Any], str]:
    """Write `text` as a job file and run it; (exit code, report, report text)."""
    job_file, report = tmp_path / "jobs.yaml", tmp_path / "report.json"
    job_file.write_text(text)
    code = main(["run", str(job_file), "--report", str(report), "--quiet"])
    raw = report.read_text()
    return code, json.loads(raw), raw


def job_named(report: dict[str, Any], name: str) -> dict[str, Any]:
    """One job's entry in a report."""
    return next(job for job in report["jobs"] if job["name"] == name)
