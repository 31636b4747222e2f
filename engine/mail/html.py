"""A self-contained HTML page for a load test: latency over time, messages per second,
the latency distribution and the key figures. Charts are inline SVG drawn here, with
no script or stylesheet from elsewhere (the page must open on a closed network)."""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

_W, _H, _PAD = 760, 240, 48
_COLOURS = {"p50_ms": "#2b6cb0", "p99_ms": "#dd6b20", "max_ms": "#c53030",
            "accepted": "#38a169", "rejected": "#d69e2e", "failed": "#c53030"}


def _scale(value: float, top: float, size: float) -> float:
    return size * (value / top) if top > 0 else 0.0


def _frame(title: str, x_label: str, y_label: str, top: float, body: str, legend: Sequence[str]) -> str:
    """Axes, a few y grid lines with values, title and legend around a chart body."""
    inner_h = _H - 2 * _PAD
    grid = []
    for step in range(5):
        value = top * step / 4
        y = _H - _PAD - _scale(value, top, inner_h)
        grid.append(f'<line x1="{_PAD}" x2="{_W - _PAD}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e2e8f0"/>'
                    f'<text x="{_PAD - 6}" y="{y + 4:.1f}" text-anchor="end" font-size="11">{value:.4g}</text>')
    keys = "".join(
        f'<rect x="{_W - _PAD - 110}" y="{_PAD + 16 * i - 9}" width="10" height="10" fill="{_COLOURS[key]}"/>'
        f'<text x="{_W - _PAD - 95}" y="{_PAD + 16 * i}" font-size="11">{html.escape(key)}</text>'
        for i, key in enumerate(legend)
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" font-family="sans-serif">'
        f'<text x="{_W / 2}" y="18" text-anchor="middle" font-size="14">{html.escape(title)}</text>'
        + "".join(grid) + body + keys
        + f'<line x1="{_PAD}" x2="{_PAD}" y1="{_PAD}" y2="{_H - _PAD}" stroke="#4a5568"/>'
        f'<line x1="{_PAD}" x2="{_W - _PAD}" y1="{_H - _PAD}" y2="{_H - _PAD}" stroke="#4a5568"/>'
        f'<text x="{_W / 2}" y="{_H - 10}" text-anchor="middle" font-size="12">{html.escape(x_label)}</text>'
        f'<text x="14" y="{_H / 2}" transform="rotate(-90 14 {_H / 2})" text-anchor="middle" font-size="12">'
        f"{html.escape(y_label)}</text></svg>"
    )


def latency_chart(timeline: list[dict[str, Any]]) -> str:
    rows = [row for row in timeline if "p50_ms" in row]
    keys = ("p50_ms", "p99_ms", "max_ms")
    last = max((row["t"] for row in timeline), default=0) + 1
    top = max((row[key] for row in rows for key in keys), default=0.0) or 1.0
    inner_w, inner_h = _W - 2 * _PAD, _H - 2 * _PAD
    lines = []
    for key in keys:
        points = " ".join(
            f"{_PAD + _scale(row['t'] + 0.5, last, inner_w):.1f},{_H - _PAD - _scale(row[key], top, inner_h):.1f}"
            for row in rows
        )
        lines.append(f'<polyline fill="none" stroke="{_COLOURS[key]}" stroke-width="1.5" points="{points}"/>')
    return _frame("Latency over time", "seconds since start", "ms", top, "".join(lines), keys)


def throughput_chart(timeline: list[dict[str, Any]]) -> str:
    keys = ("accepted", "rejected", "failed")
    last = max((row["t"] for row in timeline), default=0) + 1
    top = max((sum(row.get(key, 0) for key in keys) for row in timeline), default=0) or 1
    inner_w, inner_h = _W - 2 * _PAD, _H - 2 * _PAD
    width = inner_w / last
    bars = []
    for row in timeline:
        base = 0.0
        for key in keys:
            height = _scale(row.get(key, 0), top, inner_h)
            if height:
                y = _H - _PAD - base - height
                bars.append(f'<rect x="{_PAD + row["t"] * width:.1f}" y="{y:.1f}" width="{max(1.0, width - 1):.1f}" '
                            f'height="{height:.1f}" fill="{_COLOURS[key]}"/>')
                base += height
    return _frame("Messages per second", "seconds since start", "messages", top, "".join(bars), keys)


def histogram_chart(buckets: list[tuple[float, int]]) -> str:
    top = max((count for _, count in buckets), default=0) or 1
    inner_w, inner_h = _W - 2 * _PAD, _H - 2 * _PAD
    width = inner_w / max(1, len(buckets))
    bars = []
    for i, (upper, count) in enumerate(buckets):
        height = _scale(count, top, inner_h)
        x = _PAD + i * width
        bars.append(f'<rect x="{x:.1f}" y="{_H - _PAD - height:.1f}" width="{max(1.0, width - 2):.1f}" '
                    f'height="{height:.1f}" fill="{_COLOURS["p50_ms"]}"><title>&lt;= {upper:.4g} ms: {count}</title></rect>')
        if len(buckets) <= 12 or i % max(1, len(buckets) // 10) == 0:
            bars.append(f'<text x="{x + width / 2:.1f}" y="{_H - _PAD + 14}" text-anchor="middle" font-size="10">'
                        f"{upper:.3g}</text>")
    return _frame("Latency distribution (log buckets)", "latency up to, ms", "messages", top, "".join(bars), ())


def _table(title: str, items: dict[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(key))}</th><td>{html.escape(str(value))}</td></tr>" for key, value in items.items()
    )
    return f"<h2>{html.escape(title)}</h2><table>{rows}</table>"


def render_load_report(name: str, summary: dict[str, Any], settings: dict[str, Any]) -> str:
    timeline = summary.get("timeline") or []
    figures = {key: summary.get(key) for key in (
        "sent", "accepted", "rejected", "failed", "late_starts", "throughput_per_s", "elapsed_s")}
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'>"
        f"<title>xfer mail.load {html.escape(name)}</title><style>"
        "body{font-family:sans-serif;margin:2em;color:#1a202c}table{border-collapse:collapse;margin-bottom:1em}"
        "th,td{border:1px solid #cbd5e0;padding:2px 8px;text-align:left}svg{display:block;margin:1em 0}"
        f"</style></head><body><h1>mail.load: {html.escape(name)}</h1>"
        + _table("Test", settings)
        + _table("Results", figures)
        + _table("Latency (ms)", summary.get("latency_ms") or {})
        + _table("Reply codes", summary.get("reply_codes") or {"(none)": ""})
        + _table("Errors", summary.get("errors") or {"(none)": ""})
        + latency_chart(timeline)
        + throughput_chart(timeline)
        + histogram_chart([tuple(bucket) for bucket in summary.get("latency_buckets") or []])  # type: ignore[misc]
        + "</body></html>\n"
    )


def write_load_report(path: Path, name: str, summary: dict[str, Any], settings: dict[str, Any]) -> None:
    """Write the page under `path` atomically (`.part`, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    part = path.with_name(path.name + ".part")
    part.write_text(render_load_report(name, summary, settings), encoding="utf-8")
    os.replace(part, path)
