"""A self-contained HTML page for a load test: the result in words, the key figures,
and three plots — latency over time, messages per second, and the percentile
distribution on the 1/(1-p) axis that HdrHistogram and wrk2 users read.

The plots are SVG drawn by matplotlib (`Figure` objects, no pyplot state), imported
only here, when a page is written: a run without `report_html` never loads it. Their
text stays text (`svg.fonttype: none`: labels can be read and searched), and the page
loads no script, stylesheet or font from elsewhere (it must open on a closed network)."""

from __future__ import annotations

import html
import io
import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xfer.mail.latency import LABELS
from xfer.outputs.wording import count, figure, human_bytes, human_duration, mail_load, milliseconds
from xfer.report import JobReport

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

_COLOURS = {"p50": "#2b6cb0", "p99": "#dd6b20", "max": "#c53030",
            "accepted": "#38a169", "rejected": "#d69e2e", "failed": "#c53030"}
_TIME_AXIS = "time since the test started (s)"
#: Tick marks of the percentile axis: x = 1/(1-p).
_PERCENTILE_TICKS = [(2, "50%"), (10, "90%"), (100, "99%"), (1e3, "99.9%"), (1e4, "99.99%"),
                     (1e5, "99.999%"), (1e6, "99.9999%")]


def _figure() -> tuple[Figure, Axes]:
    from matplotlib.figure import Figure

    chart = Figure(figsize=(9, 3.4), layout="constrained")
    axes = chart.subplots()
    axes.grid(True, color="#e2e8f0")
    axes.set_axisbelow(True)
    return chart, axes


def _svg(chart: Figure, name: str) -> str:
    """The figure as an inline `<svg>` element: text as text, ids unique on the page."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name, "font.family": "sans-serif"}):
        chart.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return text[text.index("<svg"):]


def _time_axis(axes: Axes, timeline: list[dict[str, Any]]) -> None:
    """Whole seconds from the start to the end of the last second, on both time plots."""
    from matplotlib.ticker import MaxNLocator

    axes.set_xlabel(_TIME_AXIS)
    axes.set_xlim(0, max((row["t"] for row in timeline), default=0) + 1)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))


def _empty(axes: Axes, message: str) -> None:
    axes.text(0.5, 0.5, message, transform=axes.transAxes, ha="center", va="center", color="#4a5568")


def latency_chart(timeline: list[dict[str, Any]]) -> str:
    """p50, p99 and max of each second's accepted messages."""
    chart, axes = _figure()
    rows = [row for row in timeline if "p50_ms" in row]
    axes.set_title("Latency over time")
    _time_axis(axes, timeline)
    axes.set_ylabel("latency (ms)")
    if rows:
        seconds = [row["t"] + 0.5 for row in rows]  # the middle of its second
        for label in ("p50", "p99", "max"):
            axes.plot(seconds, [row[f"{label}_ms"] for row in rows], label=label, color=_COLOURS[label], marker=".")
        axes.set_ylim(bottom=0)
        axes.legend(loc="upper right")
    else:
        _empty(axes, "no message was accepted")
    return _svg(chart, "latency")


def throughput_chart(timeline: list[dict[str, Any]], offered: float | None) -> str:
    """Each second's messages by outcome, stacked; the offered rate of an open-loop test."""
    chart, axes = _figure()
    axes.set_title("Messages per second")
    _time_axis(axes, timeline)
    axes.set_ylabel("messages per second")
    seconds = [row["t"] for row in timeline]
    base = [0] * len(timeline)
    for outcome in ("accepted", "rejected", "failed"):
        heights = [row.get(outcome, 0) for row in timeline]
        if any(heights):
            axes.bar(seconds, heights, bottom=base, width=0.9, align="edge", label=outcome, color=_COLOURS[outcome])
            base = [low + high for low, high in zip(base, heights)]
    if offered:
        axes.axhline(offered, color="#4a5568", linestyle="--", label=f"offered {figure(offered)} msg/s")
    if timeline or offered:
        axes.legend(loc="upper right")
    else:
        _empty(axes, "no message was sent")
    return _svg(chart, "throughput")


def percentile_chart(curve: Sequence[tuple[float, float]], latency: dict[str, Any]) -> str:
    """Latency by percentile, x = 1/(1-p) on a log scale (ticks 50%, 90%, 99%, 99.9%...):
    the tail gets as much room as the body. The summary's percentiles are marked."""
    chart, axes = _figure()
    axes.set_title("Latency by percentile")
    axes.set_xlabel("percentile")
    axes.set_ylabel("latency (ms)")
    axes.set_xscale("log")
    points = [(1 / (1 - percentile / 100), value) for percentile, value in curve if percentile < 100]
    total = latency.get("count") or 0
    right = max(1e3, 10 ** math.ceil(math.log10(max(total, 1))))
    ticks = [(x, label) for x, label in _PERCENTILE_TICKS if x <= right]
    axes.set_xticks([x for x, _ in ticks], [label for _, label in ticks])
    axes.minorticks_off()
    axes.set_xlim(1, right)
    if points:
        axes.plot([x for x, _ in points], [y for _, y in points], color=_COLOURS["p50"], label="accepted messages")
        for key, label in LABELS.items():
            percentile, value = float(label[1:]), latency.get(key)
            if value is not None and total >= 1 / (1 - percentile / 100):  # the count resolves it
                x = 1 / (1 - percentile / 100)
                axes.plot([x], [value], "o", color=_COLOURS["p99"])
                axes.annotate(f"{label} {milliseconds(value)}", (x, value), textcoords="offset points",
                              xytext=(6, -12), ha="left", fontsize=9)  # below right: the curve rises
        top = max([y for _, y in points] + [latency.get("max_ms") or 0])
        if latency.get("max_ms") is not None:
            axes.axhline(latency["max_ms"], color=_COLOURS["max"], linestyle="--",
                         label=f"max {milliseconds(latency['max_ms'])}")
        axes.set_ylim(0, top * 1.2 or 1)  # room for the marks' labels
        axes.legend(loc="upper left")
    else:
        _empty(axes, "no percentile curve was given" if total else "no message was accepted")
    return _svg(chart, "percentiles")


#: Figures of the summary shown in the Results table, with their labels.
_RESULTS = {"sent": "sent", "accepted": "accepted", "rejected": "rejected (5xx)",
            "failed": "temporary failures (4xx, no reply)", "late_starts": "late starts", "bytes": "bytes accepted",
            "throughput_per_s": "throughput", "elapsed_s": "elapsed"}
_NAMES = {"min_ms": "min", "mean_ms": "mean", "max_ms": "max", **LABELS}


def _value(key: str, value: Any) -> str:
    """A figure as people read it: 10,000; 2.1 ms; 12.3 s; 3,540 msg/s; 1.2 MiB."""
    if key in _NAMES:
        return milliseconds(value)
    if key.endswith("_s") and key != "throughput_per_s":
        return human_duration(value)
    if key in ("throughput_per_s", "offered_rate_per_s"):
        return f"{figure(value)} msg/s"
    if key == "bytes":
        return human_bytes(value)
    return count(value) if isinstance(value, int) and not isinstance(value, bool) else str(value)


def _table(title: str, rows: dict[str, str]) -> str:
    """A two-column table; rows whose value is None are left out (no `count: None`)."""
    cells = "".join(f"<tr><th>{html.escape(key)}</th><td>{html.escape(value)}</td></tr>" for key, value in rows.items())
    return f"<h2>{html.escape(title)}</h2><table>{cells or '<tr><td>(none)</td></tr>'}</table>"


def _settings_rows(settings: dict[str, Any]) -> dict[str, str]:
    return {key.removesuffix("_s").replace("_", " "): _value(key, value)
            for key, value in settings.items() if value is not None}


def _error_rows(summary: dict[str, Any]) -> dict[str, str]:
    samples = summary.get("error_samples") or {}
    return {kind: count(number) + (f" (e.g. {samples[kind][0]})" if samples.get(kind) else "")
            for kind, number in (summary.get("errors") or {}).items()}


def render_load_report(name: str, summary: dict[str, Any], settings: dict[str, Any],
                       curve: Sequence[tuple[float, float]] = ()) -> str:
    """The page; `curve` is the latency percentile curve (`Latency.percentile_curve`)."""
    timeline = summary.get("timeline") or []
    latency = summary.get("latency_ms") or {}
    sentence = mail_load(JobReport(name, kind="mail.load", summary=summary))
    results = {label: _value(key, summary[key]) for key, label in _RESULTS.items() if summary.get(key) is not None}
    latency_rows = {_NAMES.get(key, key): _value(key, value) for key, value in latency.items() if value is not None}
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>xfer mail.load {html.escape(name)}</title><style>"
        "body{font-family:sans-serif;margin:2em;color:#1a202c}table{border-collapse:collapse;margin-bottom:1em}"
        "th,td{border:1px solid #cbd5e0;padding:2px 8px;text-align:left}svg{display:block;margin:1em 0;max-width:100%;height:auto}"
        f"</style></head><body><h1>mail.load: {html.escape(name)}</h1><p>{html.escape(sentence)}</p>"
        + _table("Test", _settings_rows(settings))
        + _table("Results", results)
        + (_table("Latency of accepted messages", latency_rows) if latency.get("count") else "")
        + _table("Reply codes", {code: count(number) for code, number in (summary.get("reply_codes") or {}).items()})
        + _table("Errors", _error_rows(summary))
        + latency_chart(timeline)
        + throughput_chart(timeline, summary.get("offered_rate_per_s"))
        + percentile_chart(curve, latency)
        + "</body></html>\n"
    )


def write_load_report(path: Path, name: str, summary: dict[str, Any], settings: dict[str, Any],
                      curve: Sequence[tuple[float, float]] = ()) -> None:
    """Write the page under `path` atomically (`.part`, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_text(render_load_report(name, summary, settings, curve), encoding="utf-8")
    os.replace(part, path)
