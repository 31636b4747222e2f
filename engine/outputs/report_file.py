"""A past run's report, read back from the JSON that `xfer run --report` wrote, as a
`Report` again: `xfer report` prints its summary with the printers `xfer run` uses,
and the HTML page (`html_report.py`) words each job the same way."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from xfer.errors import XferError
from xfer.report import Report


class ReportFileError(XferError):
    """The file is missing, not JSON, or not a report of `xfer run`."""


def read_report(path: Path) -> dict[str, Any]:
    """The report as written; ReportFileError naming the file when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ReportFileError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ReportFileError(f"{path}: not a JSON report: {exc}") from None
    if not (isinstance(data, dict) and "xfer" in data and isinstance(data.get("jobs"), list)):
        raise ReportFileError(f"{path}: not a report of 'xfer run --report' (no 'xfer' and 'jobs' keys)")
    return data


def report_from_dict(data: dict[str, Any], source: Path | str = "report") -> Report:
    """A Report with what the summary printers read: jobs (status, counts, bytes,
    duration, figures, errors), hosts, the signal that stopped the run."""
    report = Report()
    try:
        report.started_at = datetime.fromisoformat(data["started"])
        report.started, report.finished = _span(data["duration"])
        report.stopped_by = data.get("stopped_by")
        report.hosts = dict(data.get("hosts") or {})
        for entry in data["jobs"]:
            job = report.job(str(entry["name"]))
            tasks = dict(entry["tasks"])
            job.planned = tasks.pop("planned", None)
            job.counts = {"ok": 0, "failed": 0, "cancelled": 0, **tasks}
            job.kind, job.status = entry["kind"], entry["status"]
            job.started, job.finished = _span(entry["duration"])
            job.bytes, job.retries = int(entry["bytes"]), int(entry.get("retries", 0))
            job.errors = list(entry.get("errors") or [])
            job.notes, job.note_counts = list(entry.get("notes") or []), dict(entry.get("note_counts") or {})
            job.summary, job.tasks = dict(entry.get("summary") or {}), list(entry.get("task_list") or [])
        report.notes.written = Path(data["notes_file"]) if data.get("notes_file") else None
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ReportFileError(f"{source}: not a report of 'xfer run --report' ({type(exc).__name__}: {exc})") from None
    return report


def _span(duration: float) -> tuple[float, float]:
    """Start and end a duration apart, the end never 0.0 (which reads as "still running")."""
    return 1.0, 1.0 + float(duration)
