"""A message larger than `STREAM_ABOVE` is fetched to disk in chunks (IMAP partial
FETCH, POP3 RETR a block of lines at a time), never held whole: against Dovecot, the
stored copy is exact (Maildir and mbox, `From ` lines quoted, dot-stuffed lines
undone) and the process's traced memory stays a fraction of the message."""

from __future__ import annotations

import mailbox
import os
import tracemalloc
from pathlib import Path

import pytest

from xfer.mailbox_store.spool import STREAM_ABOVE
from xfer.mailbox_store.stores import unquote_mboxrd
from xfer.specload import load_job_file
from tests.jobrun import run_scheduler
from tests.servers.mail import MailServer, mail_server  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(300)


def _large_message(long_line: bool) -> bytes:
    """About STREAM_ABOVE + 4 MiB: header, then lines that need mbox quoting and POP3
    dot-stuffing, and (IMAP only: poplib refuses lines over 2,048 bytes, as RFC 5322
    allows it to) one line longer than a chunk."""
    head = b"From: big@client.test\nTo: user1@example.test\nSubject: large\nMessage-ID: <big@client.test>\n\n"
    line = b"0123456789abcdefghijklmnopqrstuvwxyz " * 2 + b"\n"
    body = bytearray()
    index = 0
    while len(body) < STREAM_ABOVE + 4 * 1024 * 1024:
        body += b"From the middle of a line\n" if index % 5000 == 0 else line
        body += b".a line starting with a dot\n" if index % 7000 == 0 else b""
        index += 1
    body += (b"x" * (3 * 1024 * 1024) + b"\n" if long_line else b"") + b"the end\n"
    return head + bytes(body)


def _deliver(server: MailServer, user: str, data: bytes, name: str) -> None:
    box = server.maildir(user)
    path = box / "new" / name
    path.write_bytes(data)
    os.chown(path, box.stat().st_uid, box.stat().st_gid)


@pytest.mark.parametrize("scheme,fmt", [("imap", "maildir"), ("imap", "mbox"), ("pop3", "maildir"), ("pop3", "mbox")])
def test_large_message_is_streamed_to_disk(
    tmp_path: Path, mail_server: MailServer, scheme: str, fmt: str  # noqa: F811
) -> None:
    server = mail_server
    big = _large_message(long_line=scheme == "imap")
    small = b"From: small@client.test\nSubject: small\nMessage-ID: <small@client.test>\n\nhello\n"
    _deliver(server, "user1", small, "1700000000.M1P1.test")
    _deliver(server, "user1", big, "1700000001.M2P1.test")
    port = server.imap_port if scheme == "imap" else server.pop3_port
    path = tmp_path / "jobs.yaml"
    path.write_text(
        "jobs:\n  - name: big\n    kind: mail.fetch\n"
        f"    source: {scheme}://{server.address('user1')}:{server.users['user1']}@127.0.0.1:{port}/\n"
        f"    dest: {tmp_path / 'backup'}\n    format: {fmt}\n"
    )
    tracemalloc.start()
    try:
        report, _ = run_scheduler(load_job_file(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    job = report.jobs["big"]
    assert report.exit_code == 0, job.errors
    assert job.summary["fetched"] == 2
    assert peak < len(big) // 3, f"peak traced memory {peak:,} for a message of {len(big):,} bytes"
    if fmt == "maildir":
        box = mailbox.Maildir(str(tmp_path / "backup" / "INBOX"), factory=None)
        stored = sorted((box.get_bytes(key) for key in box.keys()), key=len)
        assert not os.listdir(tmp_path / "backup" / "INBOX" / "tmp")
    else:
        mbox = mailbox.mbox(str(tmp_path / "backup" / "INBOX.mbox"), create=False)
        stored = sorted((unquote_mboxrd(mbox.get_bytes(key)) for key in mbox.keys()), key=len)
        assert not list((tmp_path / "backup").glob(".*spool*"))
    assert stored[0].endswith(small)
    assert stored[1].endswith(big), "the streamed message differs from what was delivered"
    assert len(stored[1]) - len(big) < 4096  # at most the server's own header lines in front
