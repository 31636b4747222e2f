"""Contradictory mail job options are refused up front, with a one-line error."""

from __future__ import annotations

import re

import pytest

from xfer.errors import SpecError
from xfer.mail.html import render_load_report
from xfer.spec import parse_job_text

LOAD = """
jobs:
  - name: load
    kind: mail.load
    smtp: {smtp}
    envelope: {{from: a@client.test, to: b@example.test}}
{extra}"""

ROUNDTRIP = """
jobs:
  - name: rt
    kind: mail.roundtrip
    smtp: smtp://mx.example.test
    fetch: {fetch}
    envelope: {{from: a@client.test, to: [b@example.test]}}
{extra}"""


def load(extra: str, smtp: str = "smtp://mx.example.test:25") -> object:
    return parse_job_text(LOAD.format(smtp=smtp, extra=extra), "jobs.yaml").jobs[0]


@pytest.mark.parametrize(
    ("extra", "smtp", "message"),
    [
        ("    rate: 10\n", "smtp://mx:25", "needs a duration"),
        ("    rate: 10\n    duration: 5\n    count: 3\n", "smtp://mx:25", "rate x duration"),
        ("", "smtp://mx:25", "give count or duration"),
        ("    count: 1\n    starttls: true\n", "smtps://mx", "implicit TLS"),
        ("    count: 1\n    report_html: out.png\n", "smtp://mx", ".html"),
        ("    count: 1\n    size: {1k: 0}\n", "smtp://mx", "weights > 0"),
        ("    count: 1\n", "ftp://mx", "scheme must be one of"),
    ],
)
def test_load_rejects_contradictions(extra: str, smtp: str, message: str) -> None:
    with pytest.raises(SpecError, match="jobs.yaml:") as caught:
        load(extra, smtp)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_load_accepts_open_and_closed_loop() -> None:
    closed = load("    count: 10\n    size: {1k: 9, 1M: 1}\n    starttls: false\n")
    assert closed.size == [(1024, 9.0), (1024**2, 1.0)] and closed.starttls is False and closed.retries == 0
    opened = load("    rate: 50\n    duration: 2\n    starttls: auto\n")
    assert opened.rate == 50 and opened.starttls == "auto"


@pytest.mark.parametrize(
    ("extra", "fetch", "message"),
    [
        ("    body: hi\n    size: 1k\n", "imap://u@h/INBOX", "not both"),
        ("    headers: {Message-ID: '<x@y>'}\n", "imap://u@h", "set by xfer"),
        ("    headers: {'Bad Name': x}\n", "imap://u@h", "not a header name"),
        ("    fetch_starttls: true\n", "imaps://u@h", "implicit TLS"),
        ("", "smtp://u@h", "scheme must be one of"),
    ],
)
def test_roundtrip_rejects_contradictions(extra: str, fetch: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_job_text(ROUNDTRIP.format(fetch=fetch, extra=extra), "jobs.yaml")
    assert message in str(caught.value)


def test_envelope_address_cannot_smuggle_commands() -> None:
    text = ROUNDTRIP.format(fetch="pop3://u@h", extra="").replace("b@example.test]", "'b@x\\r\\nRCPT TO:<c@d>']")
    text = text.replace("'b@x\\r\\n", '"b@x\\r\\n').replace("<c@d>'", '<c@d>"')
    with pytest.raises(SpecError, match="bare address"):
        parse_job_text(text, "jobs.yaml")


def test_html_report_is_self_contained() -> None:
    summary = {
        "sent": 3, "accepted": 2, "rejected": 1, "failed": 0, "late_starts": 0, "throughput_per_s": 2.0,
        "elapsed_s": 1.0, "latency_ms": {"p50": 1.0}, "reply_codes": {"250": 2, "550": 1},
        "errors": {"PermanentError": 1}, "latency_buckets": [(1.2, 1), (2.5, 1)],
        "timeline": [{"t": 0, "accepted": 2, "rejected": 1, "p50_ms": 1.0, "p99_ms": 2.0, "max_ms": 2.0}],
    }
    page = render_load_report("<load>", summary, {"server": "smtp://h:25"})
    assert page.count("<svg") == 3
    assert "<load>" not in page and "&lt;load&gt;" in page
    assert "<script" not in page and "src=" not in page
    assert all(link.startswith("#") for link in re.findall(r'href="([^"]*)"', page))  # only within the page
