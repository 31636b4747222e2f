"""mail.load against real SMTP servers: aiosmtpd in-process (the demo's sink) and
Postfix from the fixture; closed and open loop; the counts must add up."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from tests.jobrun import job_named, run_job
from tests.servers.common import free_port
from tests.servers.mail import MailServer, mail_server  # noqa: F401  (fixture)

PASSWORD = "s3cr3t-load-pw"


class Sink:
    """Accepts everything except recipients starting with `reject`; counts what it got."""

    def __init__(self) -> None:
        self.messages = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        if address.startswith("reject"):
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages += 1
        return "250 2.0.0 queued"


def _authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    ok = data.login == b"loader" and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def sink() -> Iterator[tuple[Sink, int]]:
    handler, port = Sink(), free_port()
    controller = Controller(
        handler, hostname="127.0.0.1", port=port, server_hostname="sink.test",
        authenticator=_authenticator, auth_require_tls=False,
    )
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()






def assert_adds_up(summary: dict[str, Any]) -> None:
    assert summary["sent"] == summary["accepted"] + summary["rejected"] + summary["failed"]
    assert sum(row.get("accepted", 0) for row in summary["timeline"]) == summary["accepted"]
    assert summary["latency_ms"]["count"] == summary["accepted"]


def test_closed_loop_counts_accepted_and_rejected(tmp_path: Path, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    code, report, _ = run_job(tmp_path, f"""
hosts:
  127.0.0.1:{port}: {{max_connections: 8}}
jobs:
  - name: closed
    kind: mail.load
    smtp: smtp://127.0.0.1:{port}
    envelope: {{from: load@client.test, to: [a@sink.test, b@sink.test, reject@sink.test]}}
    concurrency: 4
    messages_per_connection: 10
    count: 90
    size: {{1k: 2, 16k: 1}}
    report_html: out/load.html
""")
    summary = job_named(report, "closed")["summary"]
    assert code == 0
    assert summary["sent"] == 90
    assert summary["accepted"] == 60 and summary["rejected"] == 30 and summary["failed"] == 0
    assert summary["reply_codes"] == {"250": 60, "550": 30}
    assert handler.messages == 60
    assert_adds_up(summary)
    # 90 transactions at 10 per session: at least 9 sessions were opened.
    assert report["hosts"][f"127.0.0.1:{port}"]["connects"] >= 9
    page = (tmp_path / "out" / "load.html").read_text()
    assert page.count("<svg") == 3 and "<script" not in page and "src=" not in page


def test_open_loop_sends_at_rate_and_counts_late_starts(tmp_path: Path, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    code, report, _ = run_job(tmp_path, f"""
hosts:
  127.0.0.1:{port}: {{max_connections: 4}}
jobs:
  - name: open
    kind: mail.load
    smtp: smtp://127.0.0.1:{port}
    envelope: {{from: load@client.test, to: a@sink.test}}
    rate: 40
    duration: 2
    concurrency: 4
    size: 2k
""")
    summary = job_named(report, "open")["summary"]
    assert code == 0
    assert summary["mode"] == "open"
    assert summary["sent"] == 80 == summary["accepted"] == handler.messages
    assert_adds_up(summary)
    assert 0 <= summary["late_starts"] <= summary["sent"]


def test_open_loop_backlog_shows_as_latency_and_late_starts(tmp_path: Path, sink: tuple[Sink, int]) -> None:
    """One session and a new connection per message cannot keep up with 2,000/s (an
    SMTP connection to aiosmtpd takes longer than 0.5 ms): the messages start late, and
    latency (from the due time) grows instead of the rate dropping."""
    _, port = sink
    _, report, _ = run_job(tmp_path, f"""
hosts:
  127.0.0.1:{port}: {{max_connections: 1}}
jobs:
  - name: open
    kind: mail.load
    smtp: smtp://127.0.0.1:{port}
    envelope: {{from: load@client.test, to: a@sink.test}}
    rate: 2000
    duration: 0.5
    concurrency: 1
    messages_per_connection: 1
""")
    summary = job_named(report, "open")["summary"]
    assert summary["sent"] == 1000
    assert_adds_up(summary)
    assert summary["late_starts"] > 0
    assert summary["latency_ms"]["max_ms"] > summary["latency_ms"]["min_ms"]


def test_refused_connections_are_counted_as_failed(tmp_path: Path) -> None:
    port = free_port()  # nothing listens
    code, report, _ = run_job(tmp_path, f"""
jobs:
  - name: nowhere
    kind: mail.load
    smtp: smtp://127.0.0.1:{port}
    envelope: {{from: load@client.test, to: a@sink.test}}
    count: 5
""")
    summary = job_named(report, "nowhere")["summary"]
    assert summary["sent"] == 5 and summary["failed"] == 5 and summary["accepted"] == 0
    assert summary["errors"] == {"TransientError": 5}
    assert code == 0  # a load test reports what it measured; failures are in the figures


def test_auth_and_password_never_in_output(tmp_path: Path, sink: tuple[Sink, int], capsys: Any) -> None:
    handler, port = sink
    code, report, raw = run_job(tmp_path, f"""
hosts:
  127.0.0.1:{port}: {{user: loader, password: "{PASSWORD}"}}
jobs:
  - name: good
    kind: mail.load
    smtp: smtp://127.0.0.1:{port}
    starttls: false
    envelope: {{from: load@client.test, to: a@sink.test}}
    count: 3
  - name: bad
    kind: mail.load
    smtp: smtp://loader:wrong-{PASSWORD}@127.0.0.1:{port}
    starttls: false
    envelope: {{from: load@client.test, to: a@sink.test}}
    count: 2
""")
    assert job_named(report, "good")["summary"]["accepted"] == 3
    bad = job_named(report, "bad")["summary"]
    assert bad["rejected"] == 2 and bad["errors"] == {"AuthError": 2}, bad
    assert bad["reply_codes"] == {"535": 2}
    out = capsys.readouterr()
    for text in (raw, out.out, out.err):
        assert PASSWORD not in text


def test_closed_loop_against_postfix(tmp_path: Path, mail_server: MailServer) -> None:  # noqa: F811
    server = mail_server
    user = server.address("user1")
    code, report, _ = run_job(tmp_path, f"""
hosts:
  127.0.0.1:{server.smtp_port}: {{max_connections: 5}}
jobs:
  - name: postfix
    kind: mail.load
    smtp: smtp://127.0.0.1:{server.smtp_port}
    envelope: {{from: load@client.test, to: [{user}, {server.address('nosuchuser')}]}}
    concurrency: 5
    count: 40
    messages_per_connection: 5
""")
    summary = job_named(report, "postfix")["summary"]
    assert code == 0
    assert_adds_up(summary)
    # Every other message goes to a user Postfix does not know: refused at RCPT.
    assert summary["accepted"] == 20 and summary["rejected"] == 20
    assert summary["reply_codes"] == {"250": 20, "550": 20}
    server.wait_for_messages("user1", 20)
