"""The run report: a subscriber that turns events into the JSON summary and the
exit code (0 all succeeded, 1 something failed, 130/143 stopped by a signal)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from xfer import __version__
from xfer.events import Event

#: Tasks listed one by one in the report; past that only failures are listed.
MAX_LISTED_TASKS = 10_000
#: Notes (`job.note`: a deleted file, a refused name...) listed per job in the report;
#: the report counts them all, and `write` puts every one in a side file next to it.
MAX_LISTED_NOTES = 100

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
EXIT_SIGNAL = {"SIGINT": 130, "SIGTERM": 143}


@dataclass
class JobReport:
    name: str
    kind: str = ""
    status: str = "running"
    planned: int | None = None
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    counts: dict[str, int] = field(default_factory=lambda: {"ok": 0, "failed": 0, "cancelled": 0})
    bytes: int = 0
    retries: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[dict[str, Any]] = field(default_factory=list)
    note_counts: dict[str, int] = field(default_factory=dict)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)

    @property
    def failed(self) -> bool:
        return self.status == "failed" or self.counts["failed"] > 0 or bool(self.errors)

    def as_dict(self) -> dict[str, Any]:
        end = self.finished or time.monotonic()
        return {
            "name": self.name,
            "kind": self.kind,
            "status": self.final_status(),
            "tasks": {**self.counts, "planned": self.planned},
            "bytes": self.bytes,
            "duration": round(end - self.started, 3),
            "retries": self.retries,
            "errors": self.errors,
            "notes": self.notes,
            "notes_total": sum(self.note_counts.values()),
            "note_counts": self.note_counts,
            "summary": self.summary,
            "task_list": self.tasks,
        }

    def final_status(self) -> str:
        if self.failed:
            return "failed"
        if self.counts["cancelled"] or self.status == "running":
            return "cancelled"
        return self.status


class Report:
    def __init__(self) -> None:
        self.jobs: dict[str, JobReport] = {}
        self.hosts: dict[str, dict[str, Any]] = {}
        self.started_at = datetime.now(timezone.utc)
        self.started = time.monotonic()
        self.finished: float | None = None
        self.stopped_by: str | None = None
        self.notes = _NoteSpool()

    def job(self, name: str) -> JobReport:
        if name not in self.jobs:
            self.jobs[name] = JobReport(name)
        return self.jobs[name]

    def __call__(self, event: Event) -> None:
        name = event.name
        if name == "task.progress":
            self.job(event.job or "").bytes += event.bytes
        elif name == "task.finished":
            self._task_finished(event)
        elif name == "task.retry":
            self.job(event.job or "").retries += 1
        elif name == "job.started":
            job = self.job(event.job or "")
            job.kind = event.data.get("kind", "")
            job.started = event.time  # a distributed run's events come later than they happened
        elif name == "job.planned":
            self.job(event.job or "").planned = event.data["tasks"]
        elif name == "job.error":
            self.job(event.job or "").errors.append(event.error or "error")
        elif name == "job.note":
            self._note(self.job(event.job or ""), dict(event.data))
        elif name == "job.finished":
            job = self.job(event.job or "")
            job.status = event.data["status"]
            job.summary = event.data.get("summary") or {}
            job.finished = event.time
        elif name.startswith("pool."):
            self._pool_event(event)
        elif name == "run.stopping":
            self.stopped_by = event.data["signal"]
        elif name == "run.finished":
            self.finished = event.time

    def _task_finished(self, event: Event) -> None:
        job = self.job(event.job or "")
        job.bytes += event.bytes
        status = event.data["status"]
        job.counts[status] = job.counts.get(status, 0) + 1
        if status == "failed":
            job.errors.append(f"{event.task}: {event.error}")
        if status != "ok" or len(job.tasks) < MAX_LISTED_TASKS:
            entry = {
                "label": event.task,
                "status": status,
                "attempts": event.data["attempts"],
                "duration": round(event.data["duration"], 4),
            }
            if event.error:
                entry["error"] = event.error
            if event.data.get("detail"):
                entry["detail"] = event.data["detail"]
            job.tasks.append(entry)

    def _note(self, job: JobReport, note: dict[str, Any]) -> None:
        """Count the note by its `event` (or "note"); list the first ones; spool all."""
        kind = str(note.get("event", "note"))
        job.note_counts[kind] = job.note_counts.get(kind, 0) + 1
        if len(job.notes) < MAX_LISTED_NOTES:
            job.notes.append(note)
        self.notes.add({"job": job.name, **note}, cut=len(job.notes) < sum(job.note_counts.values()))

    def _pool_event(self, event: Event) -> None:
        host = self.hosts.setdefault(event.host or "", {"connects": 0, "limit": None, "shrinks": []})
        if event.name == "pool.connect":
            host["connects"] += 1
            host["limit"] = event.data["limit"]
            host["peak"] = max(host.get("peak", 0), event.data["in_use"])
        elif event.name == "pool.shrink":
            host["limit"] = event.data["limit"]
            host["shrinks"].append(event.data["reason"])

    @property
    def exit_code(self) -> int:
        if self.stopped_by:
            return EXIT_SIGNAL.get(self.stopped_by, EXIT_FAILED)
        return EXIT_FAILED if any(job.failed for job in self.jobs.values()) else EXIT_OK

    def as_dict(self) -> dict[str, Any]:
        end = self.finished or time.monotonic()
        jobs = [job.as_dict() for job in self.jobs.values()]
        return {
            "xfer": __version__,
            "started": self.started_at.isoformat(timespec="seconds"),
            "duration": round(end - self.started, 3),
            "exit_code": self.exit_code,
            "stopped_by": self.stopped_by,
            "totals": {
                "jobs": len(jobs),
                "jobs_failed": sum(1 for job in self.jobs.values() if job.failed),
                "tasks_ok": sum(job.counts["ok"] for job in self.jobs.values()),
                "tasks_failed": sum(job.counts["failed"] for job in self.jobs.values()),
                "bytes": sum(job.bytes for job in self.jobs.values()),
            },
            "jobs": jobs,
            "hosts": self.hosts,
            "notes_file": str(self.notes.written) if self.notes.written else None,
        }

    def write(self, path: Path) -> None:
        """Write the JSON atomically: a reader never sees half a report. When a job
        had more notes than the report lists, all notes go to `<report>.notes.jsonl`."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.notes.write(path.with_name(path.stem + ".notes.jsonl"))
        tmp, stream = _open_beside(path)
        with stream:
            stream.write(_dumps(self.as_dict()))
            stream.write("\n")
        os.replace(tmp, path)


class _NoteSpool:
    """Every note of the run, one JSON line each, in an unnamed temporary file (not in
    memory): started only once some job has more notes than the report lists."""

    def __init__(self) -> None:
        self._first: list[dict[str, Any]] = []
        self._file: IO[str] | None = None
        self.written: Path | None = None

    def add(self, note: dict[str, Any], cut: bool) -> None:
        if self._file is None and not cut:
            self._first.append(note)
            return
        if self._file is None:
            import tempfile

            self._file = tempfile.TemporaryFile("w+", encoding="utf-8")
            self._file.writelines(json.dumps(kept, default=str) + "\n" for kept in self._first)
            self._first = []
        self._file.write(json.dumps(note, default=str) + "\n")

    def write(self, path: Path) -> None:
        """Copy every note to `path` (atomically), if some were left out of the report."""
        if self._file is None:
            return
        import shutil

        self._file.flush()
        self._file.seek(0)
        tmp, stream = _open_beside(path)
        with stream:
            shutil.copyfileobj(self._file, stream)
        os.replace(tmp, path)
        self._file.seek(0, os.SEEK_END)
        self.written = path


def _open_beside(path: Path) -> tuple[Path, IO[str]]:
    """A new file in `path`'s directory, open for writing, to be renamed over `path`
    once written: made as tempfile.mkstemp makes one (exclusively, mode 0600, a name
    nobody can guess ahead), without importing tempfile and random on every run."""
    tmp = path.with_name(f".{path.name}.{os.urandom(6).hex()}.part")
    return tmp, os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w", encoding="utf-8")


def _dumps(report: dict[str, Any]) -> str:
    """The report as indented JSON, each listed task on a line of its own: json's
    C encoder cannot indent, and the pure-Python one took ~40 ms for 5,000 tasks."""
    marker = os.urandom(8).hex()  # stands in for the lists; no server text can forge it
    task_lists = []
    for index, job in enumerate(report["jobs"]):
        task_lists.append(job["task_list"])
        job["task_list"] = f"{marker}{index}"
    text = json.dumps(report, indent=2, default=str)
    for index, tasks in enumerate(task_lists):
        report["jobs"][index]["task_list"] = tasks
        lines = ",\n        ".join(json.dumps(task, default=str) for task in tasks)
        listed = f"[\n        {lines}\n      ]" if tasks else "[]"
        text = text.replace(f'"{marker}{index}"', listed, 1)
    return text
