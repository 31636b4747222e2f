"""The block reader of `UID FETCH` replies (`engine/protocols/imap_fetch.py`) against
Dovecot: messages whose text looks like IMAP reply syntax (`)\\r\\n`, `{123}`, a tagged
OK, `* BYE`), one with an empty body, one without a final line end and one over
1 MiB come back byte for byte, with their INTERNALDATE; and a mail.fetch job stores
them in the local form (Maildir and mbox). Dovecot turns a lone CR into CRLF on
APPEND, so lone CRs are left to the unit tests of `to_lf`."""

from __future__ import annotations

import asyncio
import imaplib
import mailbox
import os
import time
from pathlib import Path

import pytest

from xfer.mailbox_store.stores import unquote_mboxrd
from xfer.protocols.imap import ImapConnector
from xfer.spec import HostConfig
from xfer.urls import parse_url
from tests.jobrun import job_named, run_job
from tests.servers.mail import MailServer, mail_server  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(300)

WHEN = 1_706_778_000  # 2024-02-01 09:00:00 UTC
MESSAGES = [
    b"Subject: syntax\r\nReturn-Path: <syntax@client.test>\r\n\r\n"
    b"A1 OK fake completion\r\n)\r\n* 2 FETCH (UID 9 BODY[] {123}\r\n* BYE not really\r\nFrom the start\r\n",
    b"Subject: empty body\r\n\r\n",
    b"Subject: no final line end\r\n\r\nlast line",
    b"Subject: large\r\n\r\n" + b"".join(b"%07d {99}\r\n)\r\n" % n for n in range(1024 * 1024 // 14)),
]


def _append(server: MailServer, folder: str) -> None:
    client = imaplib.IMAP4("127.0.0.1", server.imap_port)
    client.login(server.address("user1"), server.users["user1"])
    client.create(folder)
    for index, data in enumerate(MESSAGES):
        typ, _ = client.append(folder, None, WHEN + index, data)
        assert typ == "OK"
    client.logout()


def _local(raw: bytes) -> bytes:
    text = raw.replace(b"\r\n", b"\n")
    return text if text.endswith(b"\n") else text + b"\n"


def test_messages_come_back_byte_for_byte(mail_server: MailServer) -> None:  # noqa: F811
    server = mail_server
    _append(server, "Reader")
    url = parse_url(f"imap://{server.address('user1')}:{server.users['user1']}@127.0.0.1:{server.imap_port}/Reader")

    async def fetch() -> tuple[list, dict, dict]:
        conn = await ImapConnector(url, HostConfig()).connect()
        try:
            uids = await conn.search_uids()
            return await conn.fetch_messages(uids), await conn.sizes(uids), await conn.headers(uids)
        finally:
            await conn.close()

    fetched, sizes, headers = asyncio.run(fetch())
    assert [message.raw for message in fetched] == MESSAGES
    assert len(MESSAGES[-1]) > 1024 * 1024
    assert [message.size for message in fetched] == [len(data) for data in MESSAGES]
    assert [message.received for message in fetched] == [WHEN + index for index in range(len(MESSAGES))]
    assert sorted(sizes.values()) == sorted(len(data) for data in MESSAGES)
    assert [head for _, head in headers.values()] == [data[: data.index(b"\r\n\r\n") + 4] for data in MESSAGES]


@pytest.mark.parametrize("fmt", ["maildir", "mbox"])
def test_job_stores_the_local_form(tmp_path: Path, mail_server: MailServer, fmt: str) -> None:  # noqa: F811
    server = mail_server
    _append(server, "Reader")
    text = (
        "jobs:\n  - name: reader\n    kind: mail.fetch\n"
        f"    source: imap://{server.address('user1')}:{server.users['user1']}@127.0.0.1:{server.imap_port}/Reader\n"
        f"    dest: out\n    format: {fmt}\n    batch: 3\n"
    )
    code, report, raw = run_job(tmp_path, text)
    assert code == 0, raw[:2000]
    assert job_named(report, "reader")["summary"]["fetched"] == len(MESSAGES)
    expected = [_local(data) for data in MESSAGES]
    if fmt == "maildir":
        new = tmp_path / "out" / "Reader" / "new"
        names = sorted(os.listdir(new), key=lambda name: int(name.rsplit("-", 1)[1]))  # ...,U=<validity>-<uid>
        assert [(new / name).read_bytes() for name in names] == expected
        assert [os.stat(new / name).st_mtime for name in names] == [WHEN + n for n in range(len(MESSAGES))]
        return
    box = mailbox.mbox(str(tmp_path / "out" / "Reader.mbox"), create=False)
    stored = [box.get_message(key) for key in box.keys()]
    assert [unquote_mboxrd(box.get_bytes(key)) for key in box.keys()] == expected
    senders = [b"syntax@client.test"] + [b"MAILER-DAEMON"] * (len(MESSAGES) - 1)
    assert [message.get_from().encode() for message in stored] == [
        sender + b" " + time.asctime(time.gmtime(WHEN + n)).encode() for n, sender in enumerate(senders)
    ]


def test_fetch_sent_ahead_and_not_wanted_is_read_off(mail_server: MailServer) -> None:  # noqa: F811
    """A FETCH sent ahead (`then`) for a batch the next call does not ask for, or
    followed by another command, leaves the session in step."""
    server = mail_server
    _append(server, "Reader")
    url = parse_url(f"imap://{server.address('user1')}:{server.users['user1']}@127.0.0.1:{server.imap_port}/Reader")

    async def session() -> tuple[list[bytes], list[bytes], list[int], list[bytes], list[int]]:
        conn = await ImapConnector(url, HostConfig()).connect()
        try:
            uids = await conn.search_uids()
            first = await conn.fetch_messages(uids[:1], then=uids[1:3])
            other = await conn.fetch_messages(uids[3:], then=uids[:2])  # not what was sent ahead
            searched = await conn.search_uids()  # another command while a FETCH is in flight
            sent = await conn.fetch_messages(uids[1:2], then=uids[2:])
            again = await conn.fetch_messages(uids[2:])  # what was sent ahead
            return [m.raw for m in first], [m.raw for m in other], searched, [m.raw for m in sent + again], uids
        finally:
            await conn.close()

    first, other, searched, rest, uids = asyncio.run(session())
    assert first == MESSAGES[:1]
    assert other == MESSAGES[3:]
    assert searched == uids
    assert rest == MESSAGES[1:]
