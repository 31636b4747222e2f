"""`xfer mail inspect` over real mbox and Maildir stores written with the stdlib `mailbox`."""

from __future__ import annotations

import argparse
import json
import mailbox
from pathlib import Path

import pytest

from xfer.inspect.cli import inspect_raw, register
from xfer.inspect.reading import MailboxError, mailbox_kind, read_messages

DATA = Path(__file__).parents[1] / "data" / "inspect"
NAMES = ["ham.eml", "phish_link_mismatch.eml", "phish_raw_ip.eml", "malformed_headers.eml"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser(prog="xfer")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["mail", "inspect", *argv])
    code = args.handler(args)
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def mbox_path(tmp_path: Path) -> Path:
    path = tmp_path / "inbox.mbox"
    box = mailbox.mbox(path)
    for name in NAMES:
        box.add((DATA / name).read_bytes())
    box.close()
    return path


@pytest.fixture
def maildir_path(tmp_path: Path) -> Path:
    path = tmp_path / "Maildir"
    box = mailbox.Maildir(path)
    for name in NAMES:
        box.add((DATA / name).read_bytes())
    box.close()
    return path


def test_kind_is_detected_from_the_path(mbox_path: Path, maildir_path: Path, tmp_path: Path) -> None:
    assert mailbox_kind(mbox_path) == "mbox"
    assert mailbox_kind(maildir_path) == "maildir"
    assert mailbox_kind(DATA / "ham.eml") == "eml"
    with pytest.raises(MailboxError, match="not a Maildir"):
        mailbox_kind(tmp_path)
    with pytest.raises(MailboxError, match="no such file"):
        mailbox_kind(tmp_path / "absent")


@pytest.mark.parametrize("store", ["mbox_path", "maildir_path"])
def test_json_lists_every_message(store: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, str(request.getfixturevalue(store)), "--json")
    assert code == 0
    records = json.loads(out)
    assert sorted(record["subject"] for record in records) == sorted(
        ["Minutes of Monday's meeting", "Your account has been limited", "Mailbox quota exceeded", "caf\ufffd \ufffd\ufffd invoice"]
    )
    phish = next(record for record in records if record["subject"] == "Your account has been limited")
    assert {"rule": "link-text-mismatch", "weight": 4} .items() <= phish["signals"][-1].items()
    assert phish["score"] == sum(signal["weight"] for signal in phish["signals"])


def test_min_score_filters(mbox_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, out, _ = run(capsys, str(mbox_path), "--json", "--min-score", "4")
    assert [record["subject"] for record in json.loads(out)] == ["Your account has been limited"]


def test_table_shows_messages_and_evidence(
    mbox_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out, _ = run(capsys, str(mbox_path))
    assert code == 0
    assert "4 message(s)" in out
    assert "Mailbox quota exceeded" in out
    assert "link-raw-ip +3: http://3232235777/owa/login -> 192.168.1.1 (integer)" in out


def test_hostile_subject_cannot_drive_the_terminal_or_rich_markup(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "evil.eml"
    path.write_bytes(b"From: a@example.com\nSubject: =?utf-8?q?=1B]0;pwned=07_[bold]x[/bold]?=\nMessage-ID: <1@example.com>\n\nhi\n")
    _, out, _ = run(capsys, str(path))
    assert "\x1b]0;" not in out
    assert "[bold]x[/bold]" in out.replace("\n", "").replace("│", "").replace(" ", "")


def test_bad_path_is_one_line_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, str(tmp_path / "absent"))
    assert code == 2
    assert out == ""
    assert err == f"xfer: mail inspect: {tmp_path / 'absent'}: no such file or folder\n"


def test_maildir_message_vanishing_mid_listing_is_reported_not_fatal(maildir_path: Path) -> None:
    messages = read_messages(maildir_path)
    first = next(messages)
    victim = next(path for path in (maildir_path / "new").iterdir() if path.name != first.key)
    victim.unlink()
    rest = {raw.key: raw for raw in messages}
    assert len(rest) == len(NAMES) - 1
    assert rest[victim.name].error == "unreadable: KeyError"
    assert [raw.error for key, raw in rest.items() if key != victim.name] == [None] * (len(NAMES) - 2)


def test_unreadable_message_gets_a_row_of_its_own() -> None:
    record = inspect_raw("17", b"", "unreadable: KeyError")
    assert [(signal.rule, signal.evidence) for signal in record.signals] == [("unreadable", "unreadable: KeyError")]
