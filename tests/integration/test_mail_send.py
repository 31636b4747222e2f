"""mail.send against real Postfix + Dovecot: messages sent over SMTP (AUTH on the
submission port, STARTTLS/SMTPS with a test CA) and read back by IMAP from the
recipients' mailboxes: headers, both bodies, attachment bytes and types, Bcc without
a header, a CSV merge, a recipient Postfix refuses, a dry run that sends nothing, and
TLS verification on by default."""

from __future__ import annotations

import email
import imaplib
import json
import os
import subprocess
import time
from email.message import EmailMessage
from email.policy import default
from pathlib import Path
from typing import Any

import pytest

from xfer.cli import main
from tests.jobrun import job_named, run_job
from tests.servers.mail import MailServer, mail_server, mail_server_tls  # noqa: F401  (fixtures)

PDF = b"%PDF-1.4\n" + os.urandom(3000) + b"\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + os.urandom(2000)


def fetch_all(server: MailServer, user: str, count: int) -> list[EmailMessage]:
    """Every message in a user's INBOX, read by IMAP from Dovecot (after delivery)."""
    server.wait_for_messages(user, count)
    client = imaplib.IMAP4(server.host, server.imap_port)
    try:
        client.login(server.address(user), server.users[user])
        client.select("INBOX", readonly=True)
        _, found = client.search(None, "ALL")
        messages = []
        for number in found[0].split():
            _, data = client.fetch(number, "(BODY.PEEK[])")
            messages.append(email.message_from_bytes(data[0][1], policy=default))
        return messages  # type: ignore[return-value]
    finally:
        client.logout()


def text_of(part: Any) -> str:
    return str(part.get_content()).replace("\r\n", "\n")


def notes(job: dict[str, Any]) -> dict[str, tuple[str, int | None]]:
    """address -> (outcome, reply code), from the job's per-recipient notes."""
    return {note["address"]: (note["event"], note["code"]) for note in job["notes"]}


def send_job(server: MailServer, body: str, *, smtp: str | None = None, host_extra: str = "") -> str:
    """A mail.send job that logs in as user1 on `smtp` (default: the submission port);
    on the plain port (no AUTH there) it does not log in."""
    smtp = smtp or f"smtp://127.0.0.1:{server.submission_port}"
    login = "" if smtp.endswith(f":{server.smtp_port}") else (
        f"    user: {server.address('user1')}\n    password: {server.users['user1']}\n")
    return f"""
hosts:
  "{smtp.partition("//")[2]}":
    max_connections: 2
{login}{host_extra}
jobs:
  - name: send
    kind: mail.send
    smtp: {smtp}
    from: "Team <team@client.test>"
{body}"""


def test_a_message_arrives_with_headers_bodies_and_attachments_and_bcc_stays_hidden(
    tmp_path: Path, mail_server: MailServer, capsys: Any  # noqa: F811
) -> None:
    server = mail_server
    (tmp_path / "report.pdf").write_bytes(PDF)
    (tmp_path / "chart.png").write_bytes(PNG)
    (tmp_path / "body.html").write_text("<html><body><p>Grüße, <b>team</b></p></body></html>\n")
    body = f"""    to: "User One <{server.address('user1')}>"
    cc: {server.address('user2')}
    bcc: {server.address('user3')}
    reply_to: help@client.test
    subject: "Quarterly report – Q3"
    text: "Hello,\\nthe report is attached.\\n\\n.\\n.. dots survive\\n"
    html_file: body.html
    attachments: [report.pdf, chart.png]
    headers: {{X-Campaign: q3}}
"""
    code, report, raw = run_job(tmp_path, send_job(server, body))
    job = job_named(report, "send")
    assert code == 0, job["errors"]
    assert notes(job) == {server.address(u): ("accepted", 250) for u in ("user1", "user2", "user3")}
    assert job["summary"] == {"sent": 1, "recipients": {"accepted": 3, "refused": 0, "failed": 0}}
    copies = {user: fetch_all(server, user, 1) for user in ("user1", "user2", "user3")}
    assert all(len(found) == 1 for found in copies.values())
    ids = {found[0]["Message-ID"] for found in copies.values()}
    assert len(ids) == 1 and ids == {job["task_list"][0]["detail"]["message_id"]}
    for user, (message,) in copies.items():
        assert message["From"] == "Team <team@client.test>" and message["Reply-To"] == "help@client.test"
        assert message["To"] == f"User One <{server.address('user1')}>" and message["Cc"] == server.address("user2")
        assert message["Subject"] == "Quarterly report – Q3" and message["X-Campaign"] == "q3"
        assert message["Date"].datetime is not None
        assert "Bcc" not in message
        assert text_of(message.get_body(("plain",))) == "Hello,\nthe report is attached.\n\n.\n.. dots survive\n"
        assert text_of(message.get_body(("html",))) == "<html><body><p>Grüße, <b>team</b></p></body></html>\n"
        parts = [(part.get_filename(), part.get_content_type(), part.get_payload(decode=True))
                 for part in message.iter_attachments()]
        assert parts == [("report.pdf", "application/pdf", PDF), ("chart.png", "image/png", PNG)]
    # Nothing in what the others received names the Bcc recipient (in its own copy,
    # Postfix adds Delivered-To).
    for user in ("user1", "user2"):
        assert server.address("user3").encode() not in copies[user][0].as_bytes()
    out = capsys.readouterr()
    for shown in (raw, out.out, out.err):
        assert server.users["user1"] not in shown


def test_a_merge_sends_one_message_per_row_with_its_fields(tmp_path: Path, mail_server: MailServer) -> None:  # noqa: F811
    server = mail_server
    rows = [("user1", "Ann", "A-100"), ("user2", "Bob", "B-200"), ("user3", "Cy", "C-300")]
    (tmp_path / "people.csv").write_text(
        "to,name,invoice\n" + "".join(f'"{n} <{server.address(u)}>",{n},{i}\n' for u, n, i in rows))
    body = """    merge: people.csv
    subject: "Invoice $invoice"
    text: "Dear $name,\\ninvoice $invoice is due.\\n"
    html: "<p>Dear $name</p>"
    concurrency: 2
"""
    code, report, _ = run_job(tmp_path, send_job(server, body))
    job = job_named(report, "send")
    assert code == 0, job["errors"]
    assert job["summary"]["sent"] == 3 and job["tasks"]["planned"] == 3
    for user, name, invoice in rows:
        (message,) = fetch_all(server, user, 1)
        assert message["To"] == f"{name} <{server.address(user)}>" and message["Subject"] == f"Invoice {invoice}"
        assert text_of(message.get_body(("plain",))) == f"Dear {name},\ninvoice {invoice} is due.\n"
        assert text_of(message.get_body(("html",))) == f"<p>Dear {name}</p>\n"


def test_a_refused_recipient_gets_its_own_failed_line_and_the_others_still_receive(
    tmp_path: Path, mail_server: MailServer  # noqa: F811
) -> None:
    server = mail_server
    unknown = server.address("nosuchuser")
    (tmp_path / "people.csv").write_text(
        f"to,name\n{server.address('user1')},one\n{unknown},ghost\n{server.address('user2')},two\n")
    body = f"""    cc: {unknown}
    merge: people.csv
    subject: "Hi $name"
    text: "hello $name\\n"
"""
    # The plain port: no AUTH, relays for 127.0.0.0/8, and refuses unknown local users at RCPT.
    code, report, _ = run_job(tmp_path, send_job(server, body, smtp=f"smtp://127.0.0.1:{server.smtp_port}"))
    job = job_named(report, "send")
    assert code == 1
    by_message: dict[str, dict[str, tuple[str, int | None]]] = {}
    for note in job["notes"]:
        by_message.setdefault(note["message"], {})[note["address"]] = (note["event"], note["code"])
    assert by_message["message 1"] == {server.address("user1"): ("accepted", 250), unknown: ("refused", 550)}
    assert by_message["message 2"] == {unknown: ("refused", 550)}  # its To and Cc, once; not sent
    assert by_message["message 3"] == {server.address("user2"): ("accepted", 250), unknown: ("refused", 550)}
    assert job["summary"] == {"sent": 2, "recipients": {"accepted": 2, "refused": 3, "failed": 0}}
    failed = {task["label"]: task for task in job["task_list"] if task["status"] == "failed"}
    assert set(failed) == {"message 1", "message 2", "message 3"}
    assert all(task["attempts"] == 1 for task in failed.values())
    assert "550" in failed["message 2"]["error"] and "nosuchuser" in failed["message 2"]["error"]
    assert "1 of 2 recipients refused" in failed["message 1"]["error"]
    assert fetch_all(server, "user1", 1)[0]["Subject"] == "Hi one"
    assert fetch_all(server, "user2", 1)[0]["Subject"] == "Hi two"


def queue_drained(server: MailServer, timeout: float = 20.0) -> None:
    """Block until Postfix has delivered everything it accepted (its queue is empty)."""
    config = server.root / "postfix"
    deadline = time.monotonic() + timeout
    while "Mail queue is empty" not in subprocess.run(
        ["/usr/sbin/postqueue", "-c", str(config), "-p"], env={**os.environ, "MAIL_CONFIG": str(config)},
        capture_output=True, text=True, timeout=30,
    ).stdout:
        assert time.monotonic() < deadline, server.log_tail()
        time.sleep(0.02)


def test_a_deferred_recipient_is_retried_alone(tmp_path: Path, mail_server: MailServer) -> None:  # noqa: F811
    """Postfix answers 450 for user3 (as greylisting does): each attempt sends only to
    user3 again, so user1 gets the message once; after the retries user3 is refused."""
    server = mail_server
    config = server.root / "postfix"
    (config / "access").write_text(f"{server.address('user3')} 450 4.2.0 try again later\n")
    with open(config / "main.cf", "a") as main_cf:
        main_cf.write(f"smtpd_recipient_restrictions = check_recipient_access texthash:{config / 'access'}\n")
    subprocess.run(["/usr/sbin/postfix", "-c", str(config), "reload"], env={**os.environ, "MAIL_CONFIG": str(config)},
                   check=True, capture_output=True, timeout=30)
    body = f"""    to: [{server.address('user1')}, {server.address('user3')}]
    subject: greylisted
    text: "once\\n"
"""
    text = "defaults: {retries: 2, retry_backoff: 0}\n" + send_job(server, body, smtp=f"smtp://127.0.0.1:{server.smtp_port}")
    code, report, _ = run_job(tmp_path, text)
    job = job_named(report, "send")
    assert code == 1
    assert notes(job) == {server.address("user1"): ("accepted", 250), server.address("user3"): ("refused", 450)}
    (task,) = job["task_list"]
    assert task["attempts"] == 3 and "450 4.2.0" in task["error"] and "try again later" in task["error"]
    queue_drained(server)
    assert server.message_count("user1") == 1 and server.message_count("user3") == 0


def test_dry_run_writes_eml_files_and_sends_nothing(tmp_path: Path, mail_server: MailServer) -> None:  # noqa: F811
    server = mail_server
    body = f"""    to: {server.address('user1')}
    subject: "not sent"
    text: "draft\\n"
    dry_run_dir: drafts
"""
    job_file, report_file = tmp_path / "jobs.yaml", tmp_path / "report.json"
    job_file.write_text(send_job(server, body))
    assert main(["run", str(job_file), "--dry-run", "--report", str(report_file), "--quiet"]) == 0
    (draft,) = (tmp_path / "drafts").iterdir()
    assert email.message_from_bytes(draft.read_bytes(), policy=default)["Subject"] == "not sent"
    assert json.loads(report_file.read_text())["hosts"] == {}  # no connection was made
    assert server.message_count("user1") == 0


def tls_send(server: MailServer, host_extra: str, *, starttls: bool = False) -> str:
    body = f"""    to: {server.address('user1')}
    subject: over TLS
    text: "secret stuff\\n"
"""
    if starttls:
        smtp, body = f"smtp://127.0.0.1:{server.submission_port}", body + "    starttls: true\n"
    else:
        smtp = f"smtps://127.0.0.1:{server.smtps_port}"
    return send_job(server, body, smtp=smtp, host_extra=host_extra)


def test_tls_is_verified_by_default(tmp_path: Path, mail_server_tls: MailServer) -> None:  # noqa: F811
    server = mail_server_tls
    code, report, raw = run_job(tmp_path, tls_send(server, ""))
    job = job_named(report, "send")
    assert code == 1
    (task,) = job["task_list"]
    assert task["status"] == "failed" and task["attempts"] == 1 and "certificate" in task["error"]
    assert notes(job) == {server.address("user1"): ("failed", None)}
    assert server.users["user1"] not in raw
    assert server.message_count("user1") == 0


@pytest.mark.parametrize(
    ("host_extra", "starttls"),
    [("ca_file", False), ("ca_file", True), ("    tls_verify: false", False)],
    ids=["smtps+ca_file", "starttls+ca_file", "smtps+opt-out"],
)
def test_tls_with_the_test_ca_or_the_explicit_opt_out(
    tmp_path: Path, mail_server_tls: MailServer, host_extra: str, starttls: bool  # noqa: F811
) -> None:
    server = mail_server_tls
    extra = f"    ca_file: {server.ca_pem}" if host_extra == "ca_file" else host_extra
    code, report, _ = run_job(tmp_path, tls_send(server, extra, starttls=starttls))
    assert code == 0, job_named(report, "send")["errors"]
    assert fetch_all(server, "user1", 1)[0]["Subject"] == "over TLS"
