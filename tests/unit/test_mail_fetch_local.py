"""mail.fetch's local side without a server: stores, crash recovery, attachment names,
batching and spec validation."""

from __future__ import annotations

import asyncio
import itertools
import mailbox
import os
import sqlite3
from email.message import EmailMessage
from pathlib import Path

import pytest

from xfer.errors import SpecError, UnsafePathError
from xfer.kinds._mail_folder import Turnstile
from xfer.kinds.mail_fetch import batches, local_name
from xfer.mailbox_store.attachments import safe_attachment_name, save_attachments
from xfer.mailbox_store.ledger import Ledger, digest
from xfer.mailbox_store.mbox import MboxStore
from xfer.mailbox_store.stores import (
    Incoming, MaildirStore, header_block, local_header, open_store, to_lf, unquote_mboxrd,
)
from xfer.protocols.imap import uid_set
from xfer.spec import parse_job_text
from xfer.state import StateStore

RAW = b"From: a@b.test\r\nSubject: hi\r\n\r\nFrom the start\r\n>From quoted\r\nend\r\n"


#: A state file as the first ledger wrote it (account and folder in every message row).
_VERSION_1_FILE = """
CREATE TABLE schema_version (namespace TEXT PRIMARY KEY, version INTEGER NOT NULL);
INSERT INTO schema_version VALUES ('mail_fetch', 1);
CREATE TABLE mail_fetch_folders (
    account TEXT NOT NULL, folder TEXT NOT NULL, validity INTEGER, pending TEXT,
    PRIMARY KEY (account, folder));
CREATE TABLE mail_fetch_messages (
    account TEXT NOT NULL, folder TEXT NOT NULL, token TEXT NOT NULL, digest TEXT NOT NULL,
    PRIMARY KEY (account, folder, token));
INSERT INTO mail_fetch_folders VALUES ('acct', 'INBOX', 7, '{"tokens": ["7-3"], "mark": 12}');
INSERT INTO mail_fetch_folders VALUES ('acct', 'Sent', 8, NULL);
INSERT INTO mail_fetch_messages VALUES ('acct', 'INBOX', '7-1', 'd1'), ('acct', 'INBOX', '7-2', 'd2');
INSERT INTO mail_fetch_messages VALUES ('acct', 'Sent', '8-1', 's1');
"""


def test_mbox_quotes_mboxrd_and_reads_back_exactly(tmp_path: Path) -> None:
    store = MboxStore(tmp_path / "box.mbox")
    store.write([Incoming("1", RAW, 0.0), Incoming("2", RAW.replace(b"hi", b"two"))])
    store.close()
    text = (tmp_path / "box.mbox").read_bytes()
    assert b"\n>From the start\n>>From quoted\n" in text
    assert text.startswith(b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\n")
    box = mailbox.mbox(str(tmp_path / "box.mbox"))
    assert [unquote_mboxrd(box.get_bytes(key)) for key in box.keys()] == [
        RAW.replace(b"\r\n", b"\n"), RAW.replace(b"\r\n", b"\n").replace(b"hi", b"two")
    ]


def test_mbox_recovery_truncates_a_torn_tail(tmp_path: Path) -> None:
    store = MboxStore(tmp_path / "box.mbox")
    store.write([Incoming("1", RAW)])
    mark = store.mark()
    with open(tmp_path / "box.mbox", "ab") as handle:
        handle.write(b"From MAILER-DAEMON Thu Jan  1 00:00:00 1970\nSubject: torn")
    assert store.recover(mark, ["2"]) == set()
    assert store.mark() == mark
    assert len(mailbox.mbox(str(tmp_path / "box.mbox"))) == 1


def test_maildir_recovery_keeps_renamed_and_removes_tmp(tmp_path: Path) -> None:
    store = MaildirStore(tmp_path / "INBOX")
    store.write([Incoming("7-1", RAW, 1_000_000.0)])
    (tmp_path / "INBOX" / "tmp" / "123.P1Q1.host,U=7-2").write_bytes(b"Subject: tor")
    (tmp_path / "INBOX" / "tmp" / "someone-else").write_bytes(b"x")
    assert store.recover(0, ["7-1", "7-2"]) == {"7-1"}
    assert sorted(os.listdir(tmp_path / "INBOX" / "tmp")) == ["someone-else"]
    [name] = os.listdir(tmp_path / "INBOX" / "new")
    assert os.stat(tmp_path / "INBOX" / "new" / name).st_mtime == 1_000_000.0
    assert list(mailbox.Maildir(str(tmp_path / "INBOX")).values())[0]["Subject"] == "hi"


def test_store_refuses_unsafe_local_names_and_symlinks(tmp_path: Path) -> None:
    with pytest.raises(UnsafePathError):
        local_name("..", None)
    assert local_name("INBOX/Sub/..", "/") == "INBOX.Sub..."
    (tmp_path / "evil.mbox").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(UnsafePathError):
        open_store(tmp_path, "evil", "mbox")


def test_ledger_pending_and_resync(tmp_path: Path) -> None:
    state = StateStore(tmp_path / "state.db")
    ledger = Ledger(state, "imap://u@h:143 -> mbox:/x", "INBOX")
    ledger.set_validity(7)
    ledger.begin(["7-1", "7-2"], 10)
    assert ledger.pending == (["7-1", "7-2"], 10)
    ledger.finish([("7-1", digest(RAW, 1)), ("7-2", digest(b"Subject: other\r\n\r\n", 2))])
    assert ledger.pending is None and ledger.stored() == {"7-1", "7-2"}
    # New UIDVALIDITY: the first message is recognised by its headers, the new one is not.
    kept = ledger.resync(9, {"9-5": digest(b"From: a@b.test\r\nSubject: hi\r\n\r\n", 1), "9-6": "new:3"})
    assert kept == 1 and ledger.stored() == {"9-5"} and ledger.validity == 9


def test_ledger_records_a_batch_of_any_size(tmp_path: Path) -> None:
    """A batch larger than one INSERT takes (batch: up to 1,000) is recorded whole,
    and a token given twice keeps its last digest, as row-by-row inserts did."""
    ledger = Ledger(StateStore(tmp_path / "state.db"), "imap://u@h:143 -> maildir:/x", "INBOX")
    tokens = [f"7-{uid}" for uid in range(1, 1001)]
    ledger.begin(tokens, 0)
    ledger.finish([(token, f"d{token}") for token in tokens] + [("7-5", "last")])
    assert ledger.pending is None and ledger.stored() == set(tokens)
    rows = dict(ledger.state.execute("SELECT token, digest FROM mail_fetch_messages"))
    assert rows["7-5"] == "last" and rows["7-1000"] == "d7-1000" and len(rows) == 1000


def test_ledger_of_version_1_is_upgraded_with_every_record(tmp_path: Path) -> None:
    """A state file written by the first ledger (account and folder in every message
    row) keeps what it recorded: stored tokens, digests, UIDVALIDITY and a pending
    batch, per folder; the next open finds it upgraded and leaves it alone."""
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(_VERSION_1_FILE)
    old.close()
    state = StateStore(path)
    inbox, sent = Ledger(state, "acct", "INBOX"), Ledger(state, "acct", "Sent")
    assert inbox.stored() == {"7-1", "7-2"} and inbox.validity == 7 and inbox.pending == (["7-3"], 12)
    assert sent.stored() == {"8-1"} and sent.validity == 8 and sent.pending is None
    assert dict(state.execute("SELECT token, digest FROM mail_fetch_messages")) == {"7-1": "d1", "7-2": "d2", "8-1": "s1"}
    tables = {name for (name,) in state.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not any(name.endswith("_v1") for name in tables)
    state.close()
    assert Ledger(StateStore(path), "acct", "INBOX").stored() == {"7-1", "7-2"}


def test_ledger_upgrade_raced_by_another_process_is_done_once(tmp_path: Path) -> None:
    """Two processes of one run open a version 1 file together: both see version 1,
    one upgrades it; the other, once it has the write lock, sees version 2 and leaves
    the tables alone (renaming them again would bury every record)."""
    path = tmp_path / "state.db"
    old = sqlite3.connect(path)
    old.executescript(_VERSION_1_FILE)
    old.close()
    first, second = StateStore(path), StateStore(path)
    assert second.has_version("mail_fetch", 1)
    answers = iter([True])  # the second process read the version before the first upgraded
    real = second.has_version
    second.has_version = lambda namespace, version: next(answers, None) or real(namespace, version)  # type: ignore[method-assign]
    Ledger(first, "acct", "INBOX")
    first.close()
    assert Ledger(second, "acct", "INBOX").stored() == {"7-1", "7-2"}
    assert Ledger(second, "acct", "Sent").stored() == {"8-1"}


def test_attachment_names_are_safe_and_never_overwrite(tmp_path: Path) -> None:
    assert safe_attachment_name("../../etc/passwd", 1) == "_.._etc_passwd"
    assert safe_attachment_name("..", 2) == "attachment-2"
    assert safe_attachment_name("a\r\nb.txt", 3) == "a__b.txt"
    message = EmailMessage()
    message["Subject"] = "files"
    message.set_content("see attached")
    for name in ("../report.txt", "report.txt", None):
        message.add_attachment(b"data", maintype="application", subtype="octet-stream", filename=name)
    first = save_attachments(message.as_bytes(), tmp_path / "att")
    second = save_attachments(message.as_bytes(), tmp_path / "att")
    assert first == ["_report.txt", "report.txt", "attachment-3"]
    assert second == ["_report (1).txt", "report (1).txt", "attachment-3 (1)"]
    assert sorted(os.listdir(tmp_path / "att")) == sorted(first + second)


def test_batches_cut_by_count_and_bytes() -> None:
    pairs = [(uid, 10) for uid in range(1, 8)] + [(8, 1000), (9, 10)]
    assert [[uid for uid, _ in b] for b in batches(pairs, 3, limit=100)] == [[1, 2, 3], [4, 5, 6], [7], [8], [9]]
    assert uid_set([9, 1, 2, 3, 5]) == "1:3,5,9"


@pytest.mark.parametrize(
    ("extra", "error"),
    [
        ("    source: pop3://u@h/\n    folders: [Work]\n", "POP3 has one mailbox"),
        ("    source: imap://u@h/\n    folders: ['*', INBOX]\n", "give it alone"),
        ("    source: imaps://u@h/\n    starttls: true\n", "implicit TLS"),
        ("    source: ftp://u@h/\n", "scheme must be one of"),
    ],
)
def test_spec_rejects_contradictions(extra: str, error: str) -> None:
    text = f"jobs:\n  - name: b\n    kind: mail.fetch\n    dest: out\n{extra}"
    with pytest.raises(SpecError, match=error):
        parse_job_text(text, "jobs.yaml")


def test_turnstile_lets_each_index_pass_once_its_turn_came() -> None:
    async def scenario() -> list[int]:
        gate, passed = Turnstile(), []

        async def batch(index: int) -> None:
            await gate.wait(index)
            passed.append(index)
            await gate.advance(index)

        cancelled = asyncio.ensure_future(gate.wait(2))  # gives up: the other waiter of 2 still passes
        tasks = [asyncio.ensure_future(batch(index)) for index in (3, 1, 2, 0)]
        await asyncio.sleep(0)
        cancelled.cancel()
        await asyncio.gather(*tasks)
        assert gate.passes(4) and not gate.passes(5)
        return passed

    assert asyncio.run(scenario()) == [0, 1, 2, 3]


def test_local_header_of_converted_text_is_header_block_of_raw() -> None:
    """The store digests `local_header(to_lf(raw))`; the ledger's records (and a
    UIDVALIDITY resync) rely on it equalling `header_block(raw)`. And `to_lf` is
    CRLF -> LF exactly, lone CRs and LFs kept."""
    for raw in map(b"".join, itertools.product([b"a", b"\r", b"\n", b"\r\n"], repeat=6)):
        assert local_header(to_lf(raw)) == header_block(raw), raw
        replaced = raw.replace(b"\r\n", b"\n")
        assert to_lf(raw) == (replaced if replaced.endswith(b"\n") else replaced + b"\n"), raw
