"""mail.sessions refuses contradictory options up front, with one line naming the key;
a bad user-list line names file:line and never echoes a password."""

from __future__ import annotations

from pathlib import Path

import pytest

from xfer.errors import PermanentError, SpecError
from xfer.mail.sessions_users import file_users, pattern_users
from xfer.spec import parse_job_text
from xfer.urls import Secret

JOB = """
jobs:
  - name: s
    kind: mail.sessions
    server: {server}
{extra}"""
USERS = "    users: {pattern: 'u{n}@example.test', count: 3, password: pw}\n"


def parse(extra: str, server: str = "imap://mail.example.test") -> object:
    return parse_job_text(JOB.format(server=server, extra=extra), "jobs.yaml").jobs[0]


@pytest.mark.parametrize(
    ("extra", "server", "message"),
    [
        (USERS, "imap://m", "give count or duration"),
        (USERS + "    count: 2\n    logins_per_s: 5\n", "imap://m", "takes a duration, not a count"),
        (USERS + "    count: 2\n    weights: {retr: 1}\n", "imap://m", "unknown step 'retr' for imap"),
        (USERS + "    count: 2\n    weights: {fetch_body: 1}\n", "pop3://m", "unknown step 'fetch_body' for pop3"),
        (USERS + "    count: 2\n    store_flag: 'a b'\n", "imap://m", "store_flag is one flag"),
        ("    users: {pattern: 'user@example.test', count: 3, password: pw}\n    count: 1\n", "imap://m",
         "contains {n}"),
        ("    users: {pattern: 'u{n}@x.test', count: 3}\n    count: 1\n", "imap://m", "need a password"),
        ("    users: {file: u.txt, count: 3}\n    count: 1\n", "imap://m", "count goes with pattern"),
        (USERS + "    count: 1\n    delivery: {smtp: 'smtp://m', envelope: {from: a@b.test, to: u1@example.test},"
         " rate: 1, count: 1}\n", "pop3://m", "readers watch IMAP"),
    ],
)
def test_contradictions_are_refused(extra: str, server: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse(extra, server)
    text = str(caught.value)
    assert message in text and "jobs.yaml:" in text and "\n" not in text.strip()


def test_a_valid_job_parses() -> None:
    job = parse(USERS + "    sessions: 20\n    duration: 5\n    weights: {fetch_body: 2, expunge: 1}\n")
    assert job.sessions == 20 and job.weights == {"fetch_body": 2, "expunge": 1}  # type: ignore[attr-defined]


def test_users_from_a_pattern_and_a_file(tmp_path: Path) -> None:
    shared = Secret("shared")
    assert pattern_users("u{n}@x.test", 2, shared) == [("u1@x.test", shared), ("u2@x.test", shared)]
    path = tmp_path / "users.txt"
    path.write_text("# comment\nu1@x.test pw1\n\nu2@x.test   # shared password\n")
    assert file_users(path, shared) == [("u1@x.test", Secret("pw1")), ("u2@x.test", shared)]


def test_a_bad_user_line_names_file_and_line_without_its_text(tmp_path: Path) -> None:
    path = tmp_path / "users.txt"
    path.write_text("u1@x.test pw1\nu2@x.test secret-pw extra\n")
    with pytest.raises(PermanentError) as caught:
        file_users(path, None)
    assert f"{path}:2:" in str(caught.value) and "secret-pw" not in str(caught.value)
    path.write_text("u1@x.test\n")
    with pytest.raises(PermanentError, match=":1: expected"):
        file_users(path, None)
