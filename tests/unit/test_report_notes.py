"""Report notes: counted in full, listed up to MAX_LISTED_NOTES per job, all in the side file."""

from __future__ import annotations

import json
from pathlib import Path

from xfer.events import Event
from xfer.report import MAX_LISTED_NOTES, Report


def _notes(report: Report, job: str, count: int, event: str) -> None:
    for i in range(count):
        report(Event("job.note", job=job, data={"event": event, "path": f"{job}/{i}"}))


def test_many_notes_are_counted_listed_up_to_the_bound_and_all_kept_beside(tmp_path: Path) -> None:
    report = Report()
    _notes(report, "big", MAX_LISTED_NOTES + 150, "deleted")
    _notes(report, "big", 3, "unsafe_name")
    _notes(report, "small", 2, "deleted")
    path = tmp_path / "report.json"
    report.write(path)
    written = json.loads(path.read_text())
    big, small = written["jobs"]
    assert len(big["notes"]) == MAX_LISTED_NOTES and big["notes"][0]["path"] == "big/0"
    assert big["notes_total"] == MAX_LISTED_NOTES + 153
    assert big["note_counts"] == {"deleted": MAX_LISTED_NOTES + 150, "unsafe_name": 3}
    assert small["notes"] == [{"event": "deleted", "path": "small/0"}, {"event": "deleted", "path": "small/1"}]
    side = tmp_path / "report.notes.jsonl"
    assert written["notes_file"] == str(side)
    lines = [json.loads(line) for line in side.read_text().splitlines()]
    assert len(lines) == MAX_LISTED_NOTES + 155
    assert [n["path"] for n in lines if n["job"] == "big" and n["event"] == "deleted"] == [
        f"big/{i}" for i in range(MAX_LISTED_NOTES + 150)
    ]


def test_few_notes_need_no_side_file(tmp_path: Path) -> None:
    report = Report()
    _notes(report, "j", 5, "deleted")
    report.write(tmp_path / "r.json")
    assert json.loads((tmp_path / "r.json").read_text())["notes_file"] is None
    assert not (tmp_path / "r.notes.jsonl").exists()
