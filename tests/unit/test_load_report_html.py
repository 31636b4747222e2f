"""mail.load's HTML page: matplotlib's SVG inline, axes labelled as people read them,
the percentile plot on the 1/(1-p) axis with its marks, and no raw keys or `None`."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree

from xfer.mail.html import render_load_report
from xfer.mail.latency import Latency

_SVG = "{http://www.w3.org/2000/svg}"


def _texts(svg: str) -> set[str]:
    return {"".join(node.itertext()).strip() for node in ElementTree.fromstring(svg).iter(f"{_SVG}text")}


def test_percentile_plot_has_the_nines_axis_and_marks_the_percentiles() -> None:
    latency = Latency()
    for n in range(20_000):
        latency.record(0.002 + (n % 1000) / 1e6 + (0.040 if n % 997 == 0 else 0))
    summary = {"sent": 20_000, "accepted": 20_000, "rejected": 0, "failed": 0, "throughput_per_s": 3540.2,
               "latency_ms": latency.summary(), "reply_codes": {"250": 20_000},
               "timeline": [{"t": t, "accepted": 5_000, "p50_ms": 2.5, "p99_ms": 3.0, "max_ms": 42.0} for t in range(4)]}
    page = render_load_report("load", summary, {"server": "smtp://h:25", "count": None}, latency.percentile_curve())
    svgs = re.findall(r"<svg.*?</svg>", page, re.S)
    assert len(svgs) == 3
    percentiles = _texts(svgs[2])
    assert {"50%", "90%", "99%", "99.9%", "99.99%", "percentile", "latency (ms)"} <= percentiles
    assert "99.9999%" not in percentiles  # the axis ends at the decade above the count
    marks = {text.split()[0] for text in percentiles if re.fullmatch(r"p[\d.]+ [\d.]+ m?s", text)}
    assert marks == {"p50", "p90", "p99", "p99.9"}
    assert "None" not in page and "p99_9" not in page and "count" not in page.split("<h2>Test</h2>")[1].split("</table>")[0]
    assert "20,000 sent, 20,000 accepted, 3,540 msg/s; latency p50 2.5 ms" in page


def test_an_empty_test_still_draws_labelled_axes() -> None:
    summary = {"sent": 0, "accepted": 0, "rejected": 0, "failed": 0, "latency_ms": Latency().summary(), "timeline": []}
    page = render_load_report("idle", summary, {"server": "smtp://h:25"})
    assert "None" not in page and "Latency of accepted messages" not in page
    latency, throughput, percentiles = (_texts(svg) for svg in re.findall(r"<svg.*?</svg>", page, re.S))
    assert "no message was accepted" in latency and "no message was sent" in throughput
    assert {"50%", "99.9%", "no message was accepted"} <= percentiles
