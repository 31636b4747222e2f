"""mail.sessions against real Postfix + Dovecot: every step the sessions journal is
checked against the server afterwards (flags stored, messages expunged or deleted,
fetched bodies equal to what was delivered); a wrong password is a counted LOGIN NO;
delivery under load reports a delay for every message sent."""

from __future__ import annotations

import imaplib
import json
import poplib
import smtplib
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from tests.jobrun import job_named, run_job
from tests.servers.mail import MailServer, start_mail_server
from xfer.mail.compare import fingerprint


@pytest.fixture
def server(tmp_path: Path) -> Iterator[MailServer]:
    started = start_mail_server(tmp_path, users=3)
    try:
        yield started
    finally:
        started.stop()


def deliver(server: MailServer, per_user: int) -> dict[str, bytes]:
    """`per_user` distinct messages to each user; {Message-ID: bytes sent}."""
    sent: dict[str, bytes] = {}
    with smtplib.SMTP(server.host, server.smtp_port) as smtp:
        for user in server.users:
            for index in range(per_user):
                message = EmailMessage()
                message["From"] = "sender@client.test"
                message["To"] = server.address(user)
                message["Subject"] = f"message {index} for {user}"
                message["Message-ID"] = f"<{user}-{index}@client.test>"
                message.set_content(f"body {index} of {user}\n" + "line of text\n" * (20 + index * 7))
                smtp.send_message(message)
                sent[message["Message-ID"]] = message.as_bytes()
    for user in server.users:
        server.wait_for_messages(user, per_user)
    return sent


def users_file(tmp_path: Path, server: MailServer, wrong: str | None = None) -> Path:
    lines = [f"{server.address(user)} {password}" for user, password in server.users.items()]
    if wrong is not None:
        lines.append(f"{server.address(wrong)} not-the-password  # a refused login")
    path = tmp_path / "users.txt"
    path.write_text("# address password\n" + "\n".join(lines) + "\n")
    return path


def journal(tmp_path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (tmp_path / "journal.jsonl").read_text().splitlines()]


def assert_bodies_equal(entries: list[dict[str, Any]], sent: dict[str, bytes], command: str) -> int:
    fetched = [entry for entry in entries if entry["command"] == command]
    for entry in fetched:
        want = fingerprint(sent[entry["message_id"]])
        assert entry["parts"] == [part.sha256 for part in want.parts], entry
    return len(fetched)


def imap_state(server: MailServer, user: str) -> dict[int, bytes]:
    """{UID: FLAGS response} of a user's INBOX, read with plain imaplib."""
    client = imaplib.IMAP4(server.host, server.imap_port)
    try:
        client.login(server.address(user), server.users[user])
        client.select("INBOX")
        _, data = client.uid("FETCH", "1:*", "(UID FLAGS)")
        state = {}
        for line in data:
            if isinstance(line, bytes) and b"UID" in line:
                uid = int(line.split(b"UID ")[1].split()[0].rstrip(b")"))
                state[uid] = line
        return state
    finally:
        client.logout()


def test_imap_sessions_match_the_server_state(tmp_path: Path, server: MailServer) -> None:
    sent = deliver(server, per_user=8)
    path = users_file(tmp_path, server, wrong="user2")
    code, report, raw = run_job(tmp_path, f"""
hosts:
  {server.host}:{server.imap_port}: {{max_connections: 10}}
jobs:
  - name: imap
    kind: mail.sessions
    server: imap://{server.host}:{server.imap_port}/INBOX
    users: {{file: {path.name}}}
    sessions: 3
    count: 8
    commands: 12
    weights: {{fetch_headers: 2, fetch_body: 3, search: 1, store: 2, expunge: 1}}
    journal: journal.jsonl
""")
    assert code == 0
    summary = job_named(report, "imap")["summary"]
    # 4 users in turn over 8 sessions: the two of the wrong password are refused.
    assert summary["replies"]["LOGIN"] == {"NO": 2, "OK": 6}
    assert summary["sessions"] == {"started": 8, "completed": 6, "failed": 2, "late_starts": 0}
    for command in ("LOGIN", "SELECT", "SEARCH", "FETCH HEADER", "FETCH BODY", "STORE", "EXPUNGE", "LOGOUT"):
        assert summary["latency_ms"][command]["p99"] is not None, command
    assert summary["replies"]["LOGOUT"] == {"OK": 6}
    assert summary["commands"] == sum(sum(r.values()) for r in summary["replies"].values())
    timeline_logins = sum(row.get("LOGIN", 0) for row in summary["timeline"])
    assert timeline_logins == 6 and summary["logins"] == 6
    assert "not-the-password" not in raw and "secret1" not in raw

    entries = journal(tmp_path)
    assert assert_bodies_equal(entries, sent, "FETCH BODY") > 0
    expunged = {(e["user"], e["uid"]) for e in entries if e["command"] == "EXPUNGE"}
    stored = {(e["user"], e["uid"]) for e in entries if e["command"] == "STORE"} - expunged
    assert expunged and stored
    for user in server.users:
        state = imap_state(server, user)
        address = server.address(user)
        assert len(state) == 8 - sum(1 for who, _ in expunged if who == address)
        for who, uid in expunged:
            assert who != address or uid not in state
        for who, uid in stored:
            if who == address:
                assert b"\\Flagged" in state[uid]


def test_pop3_sessions_retrieve_and_delete(tmp_path: Path, server: MailServer) -> None:
    sent = deliver(server, per_user=6)
    path = users_file(tmp_path, server)
    code, report, _ = run_job(tmp_path, f"""
jobs:
  - name: pop
    kind: mail.sessions
    server: pop3://{server.host}:{server.pop3_port}
    users: {{file: {path.name}}}
    sessions: 1            # Dovecot locks a POP3 maildrop: one session per user at a time
    count: 3
    commands: 8
    weights: {{stat: 1, list: 1, retr: 3, dele: 2}}
    journal: journal.jsonl
""")
    assert code == 0
    summary = job_named(report, "pop")["summary"]
    assert summary["sessions"]["completed"] == 3
    assert summary["replies"]["QUIT"] == {"OK": 3}
    for command in ("LOGIN", "STAT", "RETR", "DELE", "QUIT"):
        assert summary["latency_ms"][command]["count"] > 0, command
    entries = journal(tmp_path)
    assert assert_bodies_equal(entries, sent, "RETR") > 0
    deleted = [e["user"] for e in entries if e["command"] == "DELE"]
    assert deleted
    for user, password in server.users.items():
        client = poplib.POP3(server.host, server.pop3_port)
        client.user(server.address(user))
        client.pass_(password)
        count, _ = client.stat()
        client.quit()
        assert count == 6 - deleted.count(server.address(user))
        assert server.message_count(user) == count


def test_delivery_under_load_reports_a_delay_for_every_message(tmp_path: Path, server: MailServer) -> None:
    deliver(server, per_user=3)
    path = users_file(tmp_path, server)
    code, report, _ = run_job(tmp_path, f"""
hosts:
  {server.host}:{server.imap_port}: {{max_connections: 10}}
jobs:
  - name: busy
    kind: mail.sessions
    server: imap://{server.host}:{server.imap_port}
    users: {{file: {path.name}}}
    sessions: 3
    duration: 1.5
    commands: 4
    delivery:
      smtp: smtp://{server.host}:{server.smtp_port}
      envelope: {{from: load@client.test, to: [user1@example.test, user3@example.test]}}
      rate: 20
      count: 20
      size: 2k
""")
    assert code == 0
    summary = job_named(report, "busy")["summary"]
    delivery = summary["delivery"]
    assert delivery["sent"] == delivery["accepted"] == delivery["visible"] == 20
    assert delivery["verdicts"] == {"ok": 20}
    assert delivery["delay_ms"]["count"] == 20 and delivery["delay_ms"]["p99"] is not None
    assert summary["sessions"]["completed"] == summary["sessions"]["started"] > 0
    assert server.message_count("user1") == 3 + 10 and server.message_count("user3") == 3 + 10


def test_open_loop_starts_sessions_at_the_offered_rate(tmp_path: Path, server: MailServer) -> None:
    deliver(server, per_user=2)
    password = server.users["user1"]
    code, report, _ = run_job(tmp_path, f"""
jobs:
  - name: open
    kind: mail.sessions
    server: imap://{server.host}:{server.imap_port}
    users: {{pattern: "user{{n}}@example.test", count: 1, password: {password}}}
    logins_per_s: 10
    duration: 1
    sessions: 4
    commands: 2
""")
    assert code == 0
    summary = job_named(report, "open")["summary"]
    assert summary["mode"] == "open"
    assert summary["sessions"]["started"] == summary["sessions"]["completed"] == 10
    assert summary["replies"]["LOGIN"] == {"OK": 10}
    assert 0 <= summary["sessions"]["late_starts"] <= 10
    assert server.message_count("user1") == 2  # the default steps only read
