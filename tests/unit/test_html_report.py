"""The HTML page of a report escapes every text a server or a job file can put in it,
and reading a report back keeps what the printers show."""

from __future__ import annotations

import io

from xfer.events import EventBus
from xfer.outputs.html_report import render_html
from xfer.outputs.plain import print_plain_summary
from xfer.outputs.report_file import report_from_dict
from xfer.report import Report

EVIL = '<evil x="1">&'


def hostile_report() -> Report:
    """A finished run whose every server- or user-given text is EVIL."""
    report, events = Report(), EventBus()
    events.subscribe(report)
    job = f"job{EVIL}"
    events.emit("run.started")
    events.emit("job.started", job=job, data={"kind": f"kind{EVIL}"})
    events.emit("pool.connect", host=f"host{EVIL}:21", data={"limit": 2, "in_use": 1})
    events.emit("pool.shrink", host=f"host{EVIL}:21", data={"limit": 1, "reason": f"421 {EVIL}"})
    events.emit("task.finished", job=job, task=f"ok{EVIL}", bytes=5,
                data={"status": "ok", "attempts": 1, "duration": 0.1, "detail": {"name": EVIL}})
    events.emit("task.finished", job=job, task=f"bad{EVIL}", error=f"550 {EVIL}",
                data={"status": "failed", "attempts": 2, "duration": 0.2})
    events.emit("job.note", job=job, data={"event": f"note{EVIL}", "name": EVIL})
    events.emit("job.error", job=job, error=f"planning {EVIL}")
    events.emit("job.finished", job=job, data={"status": "failed", "summary": {"files": 2}})
    events.emit("run.finished")
    return report


def test_every_text_is_escaped() -> None:
    page = render_html(report_from_dict(hostile_report().as_dict()))
    assert "<evil" not in page
    escaped = page.count("&lt;evil x=&quot;1&quot;&gt;&amp;")
    # job (table, heading, summary lines), kind (2), host, shrink reason, both items,
    # the failure (error line and table), the planning error, the note, the detail
    assert escaped >= 12, page
    assert page.count("<script") == 0


def test_read_back_report_prints_the_same_summary() -> None:
    original = hostile_report()
    saved = report_from_dict(original.as_dict())
    assert saved.as_dict() | {"started": None} == original.as_dict() | {"started": None}
    texts = []
    for report in (report_from_dict(original.as_dict()), report_from_dict(saved.as_dict())):
        stream = io.StringIO()
        print_plain_summary(report, stream)
        texts.append(stream.getvalue())
    assert texts[0] == texts[1] and f"job{EVIL}" in texts[0]
