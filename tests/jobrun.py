"""Run job files in this process — the way users do (`xfer run --report`), or straight
through the scheduler when a test needs its events or pools — and read the report
back: shared by the tests of every kind."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

from xfer.cli import main
from xfer.events import Event, EventBus
from xfer.report import Report
from xfer.scheduler import RunOptions, Scheduler
from xfer.spec import JobFile


def unreachable_mirror(tmp_path: Path) -> Path:
    """A job file of one ftp.mirror to a port nothing listens on, without retries: a
    run of it goes through every start-up step and fails at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(
        f"jobs:\n  - name: m\n    kind: ftp.mirror\n    remote: ftp://127.0.0.1:{port}/\n    local: out\n    retries: 0\n"
    )
    return jobs


def run_job(tmp_path: Path, text: str, *args: str) -> tuple[int, dict[str, Any], str]:
    """Write `text` as a job file and run it (`args`: more options of `xfer run`);
    (exit code, report, report text)."""
    job_file, report = tmp_path / "jobs.yaml", tmp_path / "report.json"
    job_file.write_text(text)
    code = main(["run", str(job_file), "--report", str(report), "--quiet", *args])
    raw = report.read_text()
    return code, json.loads(raw), raw


def job_named(report: dict[str, Any], name: str) -> dict[str, Any]:
    """One job's entry in a report."""
    return next(job for job in report["jobs"] if job["name"] == name)


def run_scheduler(
    file: JobFile, *subscribers: Callable[[Event], None], **options: Any
) -> tuple[Report, Scheduler]:
    """Build, run and close a scheduler for one loaded job file; the report and the
    scheduler (its pools) afterwards. `subscribers` see every event too."""
    report, events = Report(), EventBus()
    events.subscribe(report)
    for subscriber in subscribers:
        events.subscribe(subscriber)
    scheduler = Scheduler([file], events, RunOptions(**options))

    async def main() -> None:
        scheduler.build()
        try:
            await scheduler.run()
        finally:
            scheduler.close()

    asyncio.run(main())
    return report, scheduler
