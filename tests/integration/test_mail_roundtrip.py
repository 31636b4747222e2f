"""mail.roundtrip against real Postfix + Dovecot: SMTP out, POP3/IMAP back, verdicts,
cleanup that deletes only test messages, and a Postfix header_checks rule as the
"altered in transit" case (a real server doing the altering, no fake)."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path
from typing import Any

import aiosmtplib
import pytest

from xfer.errors import AuthError
from xfer.protocols.imap import ImapConnector
from xfer.protocols.pop3 import Pop3Connector
from xfer.spec import HostConfig
from xfer.urls import parse_url
from tests.jobrun import job_named, run_job
from tests.servers.mail import MailServer, mail_server  # noqa: F401  (fixture)






def roundtrip_yaml(server: MailServer, fetch: str, *, to: str = "user1", extra: str = "") -> str:
    return f"""
hosts:
  127.0.0.1:
    user: {server.address('user1')}
    password: {server.users['user1']}
jobs:
  - name: check
    kind: mail.roundtrip
    smtp: smtp://127.0.0.1:{server.submission_port}
    fetch: {fetch}
    envelope: {{from: probe@client.test, to: {server.address(to)}}}
    headers:
      From: "Probe <probe@client.test>"
      To: "Monitor <{server.address(to)}>"
      Subject: "roundtrip {{index}} of run {{run}}"
      X-Probe: "kept as sent"
    count: 3
    concurrency: 2
    body: "Hello,\\nthis is {{token}}.\\n\\n.\\n.. dots survive\\n"
    attachments: [3k]
    timeout: 20
    poll_interval: 0.05
{extra}"""


def send_other_mail(server: MailServer, user: str) -> None:
    """A message that is not part of any test (it must survive cleanup)."""
    message = (
        f"From: friend@client.test\r\nTo: {server.address(user)}\r\nSubject: keep me\r\n"
        "Message-ID: <keep@client.test>\r\n\r\nnot a test message\r\n"
    )
    asyncio.run(aiosmtplib.send(
        message, sender="friend@client.test", recipients=[server.address(user)],
        hostname="127.0.0.1", port=server.smtp_port, start_tls=False,
    ))
    server.wait_for_messages(user, 1)


@pytest.mark.parametrize("scheme", ["pop3", "imap"])
def test_roundtrip_all_ok_and_cleanup_keeps_other_mail(tmp_path: Path, mail_server: MailServer, scheme: str) -> None:  # noqa: F811
    server = mail_server
    send_other_mail(server, "user1")
    port = server.pop3_port if scheme == "pop3" else server.imap_port
    fetch = f"{scheme}://127.0.0.1:{port}" + ("/INBOX" if scheme == "imap" else "")
    code, report, _ = run_job(tmp_path, roundtrip_yaml(server, fetch, extra="    cleanup: true\n"))
    job = job_named(report, "check")
    summary = job["summary"]
    assert code == 0, job["errors"]
    assert summary["verdicts"] == {"ok": 3}
    assert summary["deleted"] == 3
    for message in summary["messages"]:
        assert message["sent_at"] <= message["accepted_at"] <= message["visible_at"]
        assert message["latency_s"] > 0
        assert {"Received", "Return-Path", "Delivered-To"} <= set(message["transit_headers"])
        assert message["differences"] == []
    assert summary["latency_ms"]["count"] == 3 and summary["latency_ms"]["p99"] is not None
    # Only the test messages went: the other message is still there.
    assert server.message_count("user1") == 1


def test_header_altered_in_transit(tmp_path: Path, mail_server: MailServer) -> None:  # noqa: F811
    server = mail_server
    config = server.root / "postfix"
    (config / "header_checks").write_text("/^Subject: (.*)$/ REPLACE Subject: [scanned] ${1}\n")
    with open(config / "main.cf", "a") as main_cf:
        main_cf.write(f"header_checks = regexp:{config / 'header_checks'}\n")
    subprocess.run(["/usr/sbin/postfix", "-c", str(config), "reload"], env={**os.environ, "MAIL_CONFIG": str(config)},
                   check=True, capture_output=True, timeout=30)
    fetch = f"imap://127.0.0.1:{server.imap_port}/INBOX"
    code, report, _ = run_job(tmp_path, roundtrip_yaml(server, fetch))
    summary = job_named(report, "check")["summary"]
    assert code == 1
    assert summary["verdicts"] == {"header differs": 3}
    first = summary["messages"][0]
    assert any("Subject" in diff and "[scanned]" in diff for diff in first["differences"])
    assert not any("X-Probe" in diff for diff in first["differences"])


def test_missing_message_after_timeout(tmp_path: Path, mail_server: MailServer) -> None:  # noqa: F811
    """Sent to user2 but looked for in user1's mailbox: accepted, never visible."""
    server = mail_server
    text = roundtrip_yaml(server, f"pop3://127.0.0.1:{server.pop3_port}", to="user2").replace("timeout: 20", "timeout: 1.5")
    code, report, _ = run_job(tmp_path, text)
    job = job_named(report, "check")
    assert code == 1
    assert job["summary"]["verdicts"] == {"missing": 3}
    assert all(m["accepted_at"] and m["visible_at"] is None for m in job["summary"]["messages"])
    assert sum(1 for task in job["task_list"] if task["status"] == "failed") == 3
    server.wait_for_messages("user2", 3)


def test_wrong_password_is_auth_error_without_the_password(tmp_path: Path, mail_server: MailServer, capsys: Any) -> None:  # noqa: F811
    server = mail_server
    secret = "Not-The-Pa55word"
    text = roundtrip_yaml(server, f"imap://127.0.0.1:{server.imap_port}").replace(
        f"password: {server.users['user1']}", f"password: {secret}")
    code, report, raw = run_job(tmp_path, text)
    job = job_named(report, "check")
    assert code == 1
    sends = [task for task in job["task_list"] if task["label"].startswith("send ")]
    assert len(sends) == 3
    for task in sends:  # SMTP AUTH refused (535): an AuthError, not retried
        assert task["status"] == "failed" and task["attempts"] == 1 and "535" in task["error"]
    out = capsys.readouterr()
    for shown in (raw, out.out, out.err):
        assert secret not in shown


@pytest.mark.parametrize("scheme", ["pop3", "imap"])
def test_mailbox_login_refused_is_auth_error(mail_server: MailServer, scheme: str) -> None:  # noqa: F811
    server = mail_server
    secret = "Wr0ng-Secret"
    port = server.pop3_port if scheme == "pop3" else server.imap_port
    url = parse_url(f"{scheme}://user1:{secret}@127.0.0.1:{port}")
    connector = (Pop3Connector if scheme == "pop3" else ImapConnector)(url, HostConfig())
    with pytest.raises(AuthError) as caught:
        asyncio.run(connector.connect())
    assert secret not in str(caught.value)
