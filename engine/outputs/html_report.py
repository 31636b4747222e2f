"""A run's report as one HTML page (`xfer report REPORT.json --html FILE`): what a
cron user opens the morning after. Per job: what moved, how fast, what failed and
why; per host: connections and the limits servers imposed.

The page is self-contained (inline CSS, no scripts, no external assets) and every
text in it goes through `html.escape`: file names and error texts come from servers,
and a name like `<script>` must show as text (table cells are made by `_cell`)."""

from __future__ import annotations

import json
import os
import tempfile
from html import escape
from pathlib import Path
from typing import Any

from xfer.outputs.plain import SUMMARY_COLUMNS, human_bytes, summary_lines, summary_rows
from xfer.report import JobReport, Report

#: Items listed per job besides its failures (ok ones: the JSON report has them all).
MAX_LISTED_OK = 500

_EXIT_MEANING = {0: "everything succeeded", 1: "a task or job failed", 130: "stopped by SIGINT", 143: "stopped by SIGTERM"}

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; margin: .5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: .2em .6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; }
.failed { color: #b00020; font-weight: bold; }
.ok { color: #1b5e20; }
.cancelled { color: #8a6d00; }
.mono { font-family: ui-monospace, monospace; white-space: pre-wrap; word-break: break-all; }
details { margin: .3em 0 1em; }
summary { cursor: pointer; font-weight: bold; }
"""


def _cell(value: object, tag: str = "td", css: str = "") -> str:
    klass = f' class="{escape(css)}"' if css else ""
    return f"<{tag}{klass}>{escape(str(value))}</{tag}>"


def _table(head: list[str] | tuple[str, ...], rows: list[list[str]]) -> str:
    """A table from a header of plain texts and rows of cells made by `_cell`."""
    header = "".join(_cell(title, "th") for title in head)
    body = "".join(f"<tr>{''.join(row)}</tr>" for row in rows)
    return f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table>"


def _job_rows(report: Report) -> list[list[str]]:
    """The rows of the end-of-run summary (same texts), the name linking to the job's
    section, then what the summary leaves out: cancelled and planned items, retries."""
    rows = []
    for index, (job, row) in enumerate(zip(report.jobs.values(), summary_rows(report))):
        name, _kind, status, *rest = row
        rows.append([
            f'<td><a href="#job-{index}">{escape(name)}</a></td>',
            _cell(job.kind),
            _cell(status, css=status),
            *(_cell(text) for text in rest),
            _cell(job.counts.get("cancelled", 0)),
            _cell("?" if job.planned is None else job.planned),
            _cell(job.retries),
        ])
    return rows


def _host_rows(hosts: dict[str, dict[str, Any]]) -> list[list[str]]:
    rows = []
    for host, info in sorted(hosts.items()):
        shrinks = info.get("shrinks") or []
        rows.append([
            _cell(host, css="mono"),
            _cell(info.get("connects", 0)),
            _cell(info.get("peak", "-")),
            _cell(info.get("limit") if info.get("limit") is not None else "-"),
            _cell("; ".join(map(str, shrinks)) or "-", css="failed" if shrinks else ""),
        ])
    return rows


def _plural(number: int, word: str) -> str:
    return f"{number} {word}{'' if number == 1 else 's'}"


_TASK_HEAD = ("item", "status", "error", "attempts", "time", "detail")


def _task_rows(tasks: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            _cell(task.get("label", ""), css="mono"),
            _cell(task.get("status", ""), css=str(task.get("status", ""))),
            _cell(task.get("error", ""), css="mono"),
            _cell(task.get("attempts", "")),
            _cell(f"{task.get('duration', 0):.3f}s"),
            _cell(json.dumps(task["detail"], default=str, ensure_ascii=False) if task.get("detail") else "", css="mono"),
        ]
        for task in tasks
    ]


def _job_section(index: int, job: JobReport) -> str:
    """The job in words and its errors (as the summary prints them), its items that
    did not finish ok, its notes, and the items that moved."""
    status = job.final_status()
    parts = [f'<h3 id="job-{index}">{escape(job.name)} <small>({escape(job.kind)}, '
             f'<span class="{escape(status)}">{escape(status)}</span>)</small></h3>']
    alone = Report()
    alone.jobs = {job.name: job}
    parts.extend(
        f'<p class="{"failed mono" if is_error else ""}">{escape(line)}</p>' for line, is_error in summary_lines(alone)
    )
    unfinished = [task for task in job.tasks if task.get("status") != "ok"]
    if unfinished:
        parts.append(_table(_TASK_HEAD, _task_rows(unfinished)))
    if job.note_counts:
        counts = ", ".join(f"{kind}: {number}" for kind, number in sorted(job.note_counts.items()))
        rows = [[_cell(json.dumps(note, default=str, ensure_ascii=False), css="mono")] for note in job.notes]
        label = f"{_plural(sum(job.note_counts.values()), 'note')} ({counts}), first {len(job.notes)} listed"
        parts.append(f"<details><summary>{escape(label)}</summary>{_table(['note'], rows)}</details>")
    done = [task for task in job.tasks if task.get("status") == "ok"]
    if done:
        shown = done[:MAX_LISTED_OK]
        label = f"{_plural(len(done), 'item')} done" + (f", first {len(shown)} listed" if len(done) > len(shown) else "")
        parts.append(f"<details><summary>{escape(label)}</summary>{_table(_TASK_HEAD, _task_rows(shown))}</details>")
    return "\n".join(parts)


def render_html(report: Report) -> str:
    """The page for a run (a Report rebuilt from its JSON by `report_file.report_from_dict`)."""
    data = report.as_dict()
    totals, code = data["totals"], data["exit_code"]
    verdict = _EXIT_MEANING.get(code, "failed")
    title = f"xfer run {data['started']}: {verdict}"
    overview = (
        f"exit code {code} ({verdict}) · {data['duration']:.1f} s · {totals['jobs']} jobs, "
        f"{totals['jobs_failed']} failed · {totals['tasks_ok']} items ok, {totals['tasks_failed']} failed · "
        f"{human_bytes(totals['bytes'])} · xfer {data['xfer']}"
    )
    body = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="{"ok" if code == 0 else "failed"}">{escape(overview)}</p>',
        "<h2>Jobs</h2>",
        _table((*SUMMARY_COLUMNS, "cancelled", "planned", "retries"), _job_rows(report)),
        "<h2>Hosts</h2>",
        _table(("host", "connections opened", "peak in use", "limit", "limit lowered by the server"),
               _host_rows(report.hosts)),
        "<h2>Per job</h2>",
        *(_job_section(index, job) for index, job in enumerate(report.jobs.values())),
    ]
    if data["notes_file"]:
        body.append(f'<p>Every note of the run: <span class="mono">{escape(data["notes_file"])}</span></p>')
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>\n<body>\n"
        + "\n".join(body)
        + "\n</body></html>\n"
    )


def write_html(report: Report, path: Path) -> None:
    """Write the page atomically (a browser never opens half of it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as stream:
        stream.write(render_html(report))
    os.replace(tmp, path)
