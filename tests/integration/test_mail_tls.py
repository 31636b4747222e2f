"""Mail over TLS against Postfix + Dovecot with a test CA: STARTTLS, SMTPS, POP3S,
IMAPS. Verification is on by default (an unknown CA fails, and is not retried); the
host block's ca_file makes it pass, and tls_verify: false is the explicit opt-out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from xfer.cli import main
from tests.servers.mail import MailServer, mail_server_tls  # noqa: F401  (fixture)


def run_job(tmp_path: Path, text: str) -> tuple[int, dict[str, Any]]:
    job_file, report = tmp_path / "jobs.yaml", tmp_path / "report.json"
    job_file.write_text(text)
    code = main(["run", str(job_file), "--report", str(report), "--quiet"])
    return code, json.loads(report.read_text())


def tls_job(server: MailServer, smtp: str, fetch: str, host_extra: str, job_extra: str = "") -> str:
    return f"""
hosts:
  127.0.0.1:
    user: {server.address('user1')}
    password: {server.users['user1']}
{host_extra}
jobs:
  - name: tls
    kind: mail.roundtrip
    smtp: {smtp}
    fetch: {fetch}
    envelope: {{from: probe@client.test, to: {server.address('user1')}}}
    count: 2
    timeout: 20
    poll_interval: 0.05
    cleanup: true
{job_extra}"""


@pytest.mark.parametrize(
    ("smtp", "fetch", "job_extra"),
    [
        ("smtp://127.0.0.1:{submission}", "imaps://127.0.0.1:{imaps}/INBOX", "    starttls: true\n"),
        ("smtps://127.0.0.1:{smtps}", "pop3s://127.0.0.1:{pop3s}", ""),
        ("smtp://127.0.0.1:{submission}", "imap://127.0.0.1:{imap}", "    fetch_starttls: true\n"),
        ("smtp://127.0.0.1:{submission}", "pop3://127.0.0.1:{pop3}", "    fetch_starttls: true\n"),
    ],
    ids=["starttls+imaps", "smtps+pop3s", "imap-starttls", "pop3-stls"],
)
def test_tls_verified_with_the_test_ca(tmp_path: Path, mail_server_tls: MailServer, smtp: str, fetch: str, job_extra: str) -> None:  # noqa: F811
    server = mail_server_tls
    ports = dict(submission=server.submission_port, smtps=server.smtps_port, imaps=server.imaps_port,
                 pop3s=server.pop3s_port, imap=server.imap_port, pop3=server.pop3_port)
    text = tls_job(server, smtp.format(**ports), fetch.format(**ports), f"    ca_file: {server.ca_pem}", job_extra)
    code, report = run_job(tmp_path, text)
    job = report["jobs"][0]
    assert code == 0, job["errors"]
    assert job["summary"]["verdicts"] == {"ok": 2}


def test_unknown_ca_fails_without_retry(tmp_path: Path, mail_server_tls: MailServer) -> None:  # noqa: F811
    server = mail_server_tls
    text = tls_job(server, f"smtps://127.0.0.1:{server.smtps_port}", f"imaps://127.0.0.1:{server.imaps_port}", "")
    code, report = run_job(tmp_path, text)
    job = report["jobs"][0]
    assert code == 1
    sends = [task for task in job["task_list"] if task["label"].startswith("send ")]
    assert len(sends) == 2
    for task in sends:
        assert task["status"] == "failed" and task["attempts"] == 1
        assert "certificate" in task["error"]


def test_tls_verify_false_is_the_opt_out(tmp_path: Path, mail_server_tls: MailServer) -> None:  # noqa: F811
    server = mail_server_tls
    text = tls_job(server, f"smtps://127.0.0.1:{server.smtps_port}", f"imaps://127.0.0.1:{server.imaps_port}",
                   "    tls_verify: false")
    code, report = run_job(tmp_path, text)
    assert code == 0, report["jobs"][0]["errors"]
    assert report["jobs"][0]["summary"]["verdicts"] == {"ok": 2}
