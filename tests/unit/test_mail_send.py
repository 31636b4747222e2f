"""mail.send without a server: spec checks, composition (Bcc, MIME types, fields), the
merge file checked before anything is sent, and --dry-run's .eml files. Sending to
real servers is in tests/integration/test_mail_send.py."""

from __future__ import annotations

import email
import json
import subprocess
import sys
from email.message import EmailMessage
from email.policy import default
from pathlib import Path

import pytest

from xfer.cli import main
from xfer.errors import SpecError
from xfer.mail.compose import Draft, attachment, compose, new_message_id
from xfer.spec import parse_job_text
from tests.jobrun import job_named

JOB = """
jobs:
  - name: send
    kind: mail.send
    smtp: {smtp}
    from: "Team <team@example.test>"
{extra}"""


def spec(extra: str, smtp: str = "smtp://127.0.0.1:1") -> object:
    return parse_job_text(JOB.format(smtp=smtp, extra=extra), "jobs.yaml").jobs[0]


@pytest.mark.parametrize(
    ("extra", "smtp", "message"),
    [
        ("    subject: s\n", "smtp://mx", "give the body as text or text_file"),
        ("    to: a@x.test\n    subject: s\n    text: t\n    text_file: b.txt\n", "smtp://mx", "text or text_file"),
        ("    subject: s\n    text: t\n", "smtp://mx", "give recipients"),
        ("    to: a@x.test\n    merge: r.csv\n    subject: s\n    text: t\n", "smtp://mx", "leave 'to' out"),
        ("    to: a@x.test\n    subject: Hi $name\n    text: t\n", "smtp://mx", "subject uses $name"),
        ("    to: a@x.test\n    subject: s\n    text: costs 5$\n", "smtp://mx", "a literal $ is written $$"),
        ("    to: not an address\n    subject: s\n    text: t\n", "smtp://mx", "is not an e-mail address"),
        ("    to: a@x.test\n    subject: s\n    text: t\n    headers: {Bcc: b@x.test}\n", "smtp://mx", "Bcc is set"),
        ("    to: a@x.test\n    subject: s\n    text: t\n    starttls: true\n", "smtps://mx", "implicit TLS"),
        ("    to: a@x.test\n    subject: s\n    text: t\n", "pop3://mx", "scheme must be one of"),
    ],
)
def test_spec_rejects_contradictions_in_one_line(extra: str, smtp: str, message: str) -> None:
    with pytest.raises(SpecError, match=r"jobs.yaml:\d+:\d+") as caught:
        spec(extra, smtp)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_spec_takes_one_address_or_many_and_files() -> None:
    job = spec("    to: a@x.test\n    cc: [\"B <b@x.test>\", c@x.test]\n    bcc: d@x.test\n"
               "    subject: s\n    text_file: body.txt\n    attachments: [a.pdf]\n")
    assert job.to == ["a@x.test"] and job.cc == ["B <b@x.test>", "c@x.test"] and job.bcc == ["d@x.test"]
    assert job.text_file == Path("body.txt") and job.attachments == [Path("a.pdf")]


def _parse(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=default)  # type: ignore[return-value]


def _text(part: EmailMessage | None) -> str:
    """A text part's content with LF line ends (the message is sent with CRLF)."""
    assert part is not None
    return str(part.get_content()).replace("\r\n", "\n")


def test_compose_keeps_bcc_out_of_the_headers_and_in_the_envelope() -> None:
    draft = Draft(sender="Team <team@example.test>", subject="Hello $name", text="Dear $name\n",
                  html="<p>$name</p>", to=["A <a@x.test>"], cc=["b@x.test"], bcc=["c@x.test", "a@x.test"])
    sent = compose(draft, {"name": "Ann & <Co>"}, new_message_id(draft.sender))
    assert sent.sender == "team@example.test"
    assert sent.recipients == ["a@x.test", "b@x.test", "c@x.test"]  # each address once
    message = _parse(sent.data)
    assert "Bcc" not in message and b"c@x.test" not in sent.data
    assert message["Subject"] == "Hello Ann & <Co>" and message["Cc"] == "b@x.test"
    assert message["Message-ID"].endswith("@example.test>") and message["Date"].datetime is not None
    assert _text(message.get_body(("plain",))) == "Dear Ann & <Co>\n"
    assert _text(message.get_body(("html",))) == "<p>Ann &amp; &lt;Co&gt;</p>\n"  # field values escaped in HTML
    assert b"\r\n" in sent.data and b"\n" not in sent.data.replace(b"\r\n", b"")


@pytest.mark.parametrize(
    ("name", "content_type"),
    [("report.pdf", "application/pdf"), ("photo.PNG", "image/png"), ("data.csv", "text/csv"),
     ("notes.txt", "text/plain"), ("logs.tar.gz", "application/gzip"), ("blob", "application/octet-stream")],
)
def test_attachments_get_their_mime_type_and_exact_bytes(name: str, content_type: str) -> None:
    data = bytes(range(256)) * 3
    draft = Draft(sender="t@x.test", subject="s", text="t", to=["a@x.test"], attachments=[attachment(name, data)])
    (part,) = _parse(compose(draft, {}, "<1@x.test>").data).iter_attachments()
    assert part.get_content_type() == content_type and part.get_filename() == name
    assert part.get_payload(decode=True) == data


MERGE_JOB = """
jobs:
  - name: merge
    kind: mail.send
    smtp: smtp://127.0.0.1:{port}
    from: team@example.test
    bcc: archive@example.test
    merge: people.csv
    subject: "Hello $name"
{body}{extra}"""
TEXT = '    text: "Dear $name, your code is $code.\\n"\n'


def _merge_run(tmp_path: Path, csv_text: str, *options: str, extra: str = "", body: str = TEXT) -> tuple[int, dict]:  # type: ignore[type-arg]
    """Run the merge job (aimed at a port where nothing listens); (exit code, report)."""
    (tmp_path / "people.csv").write_text(csv_text)
    (tmp_path / "jobs.yaml").write_text(MERGE_JOB.format(port=1, body=body, extra=extra))
    code = main(["run", str(tmp_path / "jobs.yaml"), "--report", str(tmp_path / "r.json"), "--quiet", *options])
    return code, json.loads((tmp_path / "r.json").read_text())


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("to,name\na@x.test,A\n", "people.csv:1: the templates use $code but the header row has no such column"),
        ("name,code\nA,1\n", "people.csv:1: no 'to' column"),
        ("to,name,code\na@x.test,A,1\nb@x.test,B\n", "people.csv:3: fewer cells"),
        ("to,name,code\na@x.test,A,1,extra\n", "people.csv:2: more cells"),
        ("to,name,code\na@x.test,A,1\n,B,2\n", "people.csv:3: 'to' is empty"),
        ("to,name,code\nnobody,A,1\n", "people.csv:2: to:"),
        ('to,name,code\na@x.test,"A\nB",1\n', "people.csv:3: name goes into a header"),
        ("", "empty"),
    ],
)
def test_a_bad_merge_file_stops_the_job_before_anything_is_sent(tmp_path: Path, csv_text: str, message: str) -> None:
    code, report = _merge_run(tmp_path, csv_text)
    job = job_named(report, "merge")
    assert code == 1 and job["tasks"]["planned"] in (None, 0)
    assert len(job["errors"]) == 1 and message in job["errors"][0]
    assert report["hosts"] == {}  # nothing connected


def test_a_missing_attachment_stops_the_job_naming_the_file(tmp_path: Path) -> None:
    code, report = _merge_run(tmp_path, "to,name,code\na@x.test,A,1\n", extra="    attachments: [gone.pdf]\n")
    job = job_named(report, "merge")
    assert code == 1 and report["hosts"] == {}
    assert job["errors"] == [f"attachment {tmp_path / 'gone.pdf'}: No such file or directory"]


def test_dry_run_writes_one_eml_per_row_and_connects_to_nothing(tmp_path: Path) -> None:
    (tmp_path / "terms.txt").write_text("terms\n")
    code, report = _merge_run(tmp_path, "to,name,code\n\"Ann <a@x.test>\",Ann,11\nb@x.test,Bob,22\n", "--dry-run",
                                 extra="    attachments: [terms.txt]\n    dry_run_dir: out\n")
    job = job_named(report, "merge")
    assert code == 0, job["errors"]
    assert report["hosts"] == {} and job["summary"]["sent"] == 0
    files = sorted((tmp_path / "out").iterdir())
    assert [path.name for path in files] == ["message-000001.eml", "message-000002.eml"]  # no temporary left
    first, second = (_parse(path.read_bytes()) for path in files)
    assert first["To"] == "Ann <a@x.test>" and first["Subject"] == "Hello Ann" and "Bcc" not in first
    assert _text(second.get_body(("plain",))) == "Dear Bob, your code is 22.\n"
    recipients = {task["label"]: task["detail"]["recipients"] for task in job["task_list"]}
    assert recipients == {"message 1": ["a@x.test", "archive@example.test"],
                          "message 2": ["b@x.test", "archive@example.test"]}


def test_the_kind_module_imports_no_pydantic() -> None:
    code = "import sys, xfer.kinds.mail_send; print(any(m.startswith('pydantic') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    assert done.stdout.strip() == "False"


def test_the_summary_in_words() -> None:
    from xfer.kinds.mail_send import MailSend
    from xfer.report import JobReport

    sent = JobReport("j", kind="mail.send", summary={"sent": 2, "recipients": {"accepted": 3, "refused": 1, "failed": 0}})
    assert MailSend.describe(sent) == "2 messages sent; recipients: 3 accepted, 1 refused"
    dry = JobReport("j", kind="mail.send", summary={"sent": 0, "recipients": {}, "dry_run_dir": "/x/outbox"})
    dry.counts["ok"] = 1
    assert MailSend.describe(dry) == "1 message written to /x/outbox (dry run, nothing sent)"


@pytest.mark.parametrize(
    ("body", "message"),
    [(None, "text_file {path}: No such file or directory"),
     ("costs 5$ only\n", "text_file {path}: a '$' that starts no field name"),
     ("hello $nobody\n", "people.csv:1: the templates use $nobody")],
)
def test_a_body_file_is_checked_before_anything_is_sent(tmp_path: Path, body: str | None, message: str) -> None:
    path = tmp_path / "letter.txt"
    if body is not None:
        path.write_text(body)
    code, report = _merge_run(tmp_path, "to,name,code\na@x.test,A,1\n", body="    text_file: letter.txt\n")
    assert code == 1 and report["hosts"] == {}
    (error,) = job_named(report, "merge")["errors"]
    assert message.format(path=path) in error
