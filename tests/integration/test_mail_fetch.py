"""mail.fetch against real Postfix + Dovecot: INBOX filled over SMTP, other folders by
IMAP APPEND; fetched to Maildir and mbox and compared message by message with what
was sent; incremental re-runs, UIDVALIDITY change, delete_after, kill -9 mid-fetch."""

from __future__ import annotations

import asyncio
import imaplib
import mailbox
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiosmtplib
import pytest

from xfer.kinds.mail_fetch import FETCHERS
from xfer.mailbox_store.stores import unquote_mboxrd
from tests.jobrun import job_named, run_job
from tests.servers.mail import MailServer, mail_server, start_mail_server  # noqa: F401  (fixture)


def message(user: str, n: int, *, size: int = 0, tag: str = "m") -> bytes:
    """A complete message (Message-ID and Date set, so Postfix only prepends headers);
    its body has lines an mbox must quote."""
    filler = "".join(f"line {i} of {tag}{n}\n" for i in range(size // 20))
    return (
        f"From: Sender <sender@client.test>\nTo: {user}@example.test\nSubject: {tag} {n}\n"
        f"Date: Mon, 01 Jan 2024 10:00:{n % 60:02d} +0000\nMessage-ID: <{tag}{n}.{user}@client.test>\n\n"
        f"Body of {tag} {n}\nFrom here on, mbox must quote.\n>From already quoted.\n{filler}"
    ).encode()


def smtp_fill(server: MailServer, user: str, messages: list[bytes]) -> None:
    async def send() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=server.smtp_port, start_tls=False)
        await smtp.connect()
        for data in messages:
            await smtp.sendmail("sender@client.test", [server.address(user)], data)
        await smtp.quit()

    before = server.message_count(user)
    asyncio.run(send())
    server.wait_for_messages(user, before + len(messages))


def imap_session(server: MailServer, user: str) -> imaplib.IMAP4:
    client = imaplib.IMAP4("127.0.0.1", server.imap_port)
    client.login(server.address(user), server.users[user])
    return client


def imap_fill(server: MailServer, user: str, folder: str, messages: list[bytes], *, create: bool = True) -> None:
    client = imap_session(server, user)
    if create:
        client.create(folder)
    for data in messages:
        typ, _ = client.append(folder, None, None, data.replace(b"\n", b"\r\n"))
        assert typ == "OK"
    client.logout()






def job_yaml(server: MailServer, jobs: list[tuple[str, str, str, str]], extra: str = "") -> str:
    """jobs: (name, user, source path/scheme, format)."""
    hosts = "hosts:\n  127.0.0.1:\n    max_connections: 8\n"
    body = ""
    for name, user, source, fmt in jobs:
        scheme, _, path = source.partition(":")
        port = server.imap_port if scheme == "imap" else server.pop3_port
        body += (
            f"  - name: {name}\n    kind: mail.fetch\n"
            f"    source: {scheme}://{server.address(user)}:{server.users[user]}@127.0.0.1:{port}/{path}\n"
            f"    dest: {name}\n    format: {fmt}\n    batch: 7\n{extra}"
        )
    return hosts + "jobs:\n" + body


def local_messages(path: Path, fmt: str, *, after_crash: bool = False) -> list[bytes]:
    """The stored messages, as the sender's LF text (mbox quoting undone). A killed run
    may leave a file in tmp/ (readers never look there); a finished one may not."""
    if fmt == "maildir":
        assert after_crash or not os.listdir(path / "tmp"), "a half-written message was left in tmp/"
        box = mailbox.Maildir(str(path), factory=None, create=False)
        return [box.get_bytes(key) for key in box.keys()]
    box = mailbox.mbox(str(path), create=False)
    return [unquote_mboxrd(box.get_bytes(key)) for key in box.keys()]


def assert_same(local: list[bytes], sent: list[bytes]) -> None:
    """Each sent message stored exactly once and intact (Postfix prepends headers)."""
    assert len(local) == len(sent)
    for data in sent:
        matches = [stored for stored in local if stored.endswith(data if data.endswith(b"\n") else data + b"\n")]
        assert len(matches) == 1, f"{data[:80]!r} stored {len(matches)} times"


def test_accounts_and_folders_to_maildir_and_mbox_then_incremental(tmp_path: Path, mail_server: MailServer) -> None:  # noqa: F811
    server = mail_server
    inbox1 = [message("user1", n, size=600) for n in range(20)]
    inbox2 = [message("user2", n, size=300) for n in range(15)]
    work = [message("user1", n, tag="work") for n in range(9)]
    smtp_fill(server, "user1", inbox1)
    smtp_fill(server, "user2", inbox2)
    imap_fill(server, "user1", "Work", work)
    jobs = [
        ("u1-maildir", "user1", "imap:*", "maildir"),
        ("u1-mbox", "user1", "imap:INBOX", "mbox"),
        ("u2-pop3", "user2", "pop3:", "mbox"),
        ("u2-imap", "user2", "imap:INBOX", "maildir"),
    ]
    code, report, raw = run_job(tmp_path, job_yaml(server, jobs))
    assert code == 0, raw[:2000]
    assert job_named(report, "u1-maildir")["summary"]["fetched"] == 29
    assert_same(local_messages(tmp_path / "u1-maildir" / "INBOX", "maildir"), inbox1)
    assert_same(local_messages(tmp_path / "u1-maildir" / "Work", "maildir"), work)
    assert_same(local_messages(tmp_path / "u1-mbox" / "INBOX.mbox", "mbox"), inbox1)
    assert_same(local_messages(tmp_path / "u2-pop3" / "INBOX.mbox", "mbox"), inbox2)
    assert_same(local_messages(tmp_path / "u2-imap" / "INBOX", "maildir"), inbox2)
    for user in ("user1", "user2"):
        assert server.users[user] not in raw  # passwords never in the report
    # Nothing new: nothing fetched.
    code, report, _ = run_job(tmp_path, job_yaml(server, jobs))
    assert code == 0
    assert [job_named(report, name)["summary"]["fetched"] for name, *_ in jobs] == [0, 0, 0, 0]
    # New mail is fetched once.
    extra1, extra2 = message("user1", 100), message("user2", 100)
    smtp_fill(server, "user1", [extra1])
    smtp_fill(server, "user2", [extra2])
    code, report, _ = run_job(tmp_path, job_yaml(server, jobs))
    assert code == 0
    assert [job_named(report, name)["summary"]["fetched"] for name, *_ in jobs] == [1, 1, 1, 1]
    assert_same(local_messages(tmp_path / "u1-mbox" / "INBOX.mbox", "mbox"), [*inbox1, extra1])
    assert_same(local_messages(tmp_path / "u2-pop3" / "INBOX.mbox", "mbox"), [*inbox2, extra2])


def test_empty_folder_on_the_first_run_then_its_first_message(tmp_path: Path, mail_server: MailServer) -> None:  # noqa: F811
    """A first run surveys a folder with one `UID FETCH 1:*`: on an empty folder that
    is an answer with nothing in it, not an error; the next run, the survey of a
    folder with nothing stored yet, takes the message that came meanwhile."""
    server = mail_server
    imap_fill(server, "user3", "Empty", [])
    jobs = [("u3-empty", "user3", "imap:Empty", "maildir")]
    code, report, raw = run_job(tmp_path, job_yaml(server, jobs))
    assert code == 0, raw[:2000]
    assert job_named(report, "u3-empty")["summary"]["fetched"] == 0
    first = message("user3", 1, tag="late")
    imap_fill(server, "user3", "Empty", [first], create=False)
    code, report, raw = run_job(tmp_path, job_yaml(server, jobs))
    assert code == 0, raw[:2000]
    assert job_named(report, "u3-empty")["summary"]["fetched"] == 1
    assert_same(local_messages(tmp_path / "u3-empty" / "Empty", "maildir"), [first])


def test_uidvalidity_change_resyncs_without_duplicates(tmp_path: Path, mail_server: MailServer) -> None:  # noqa: F811
    server = mail_server
    first = [message("user1", n, tag="arch") for n in range(5)]
    imap_fill(server, "user1", "Archive", first)
    jobs = [("arch", "user1", "imap:Archive", "mbox")]
    code, report, _ = run_job(tmp_path, job_yaml(server, jobs))
    assert code == 0 and job_named(report, "arch")["summary"]["fetched"] == 5
    client = imap_session(server, "user1")
    before = client.status("Archive", "(UIDVALIDITY)")[1][0]
    client.delete("Archive")
    client.logout()
    later = message("user1", 99, tag="arch")
    imap_fill(server, "user1", "Archive", [*first, later])
    client = imap_session(server, "user1")
    assert client.status("Archive", "(UIDVALIDITY)")[1][0] != before  # the precondition
    client.logout()
    code, report, _ = run_job(tmp_path, job_yaml(server, jobs))
    result = job_named(report, "arch")["summary"]
    assert code == 0
    assert result["resynced"] == ["Archive"] and result["fetched"] == 1
    assert_same(local_messages(tmp_path / "arch" / "Archive.mbox", "mbox"), [*first, later])
    code, report, _ = run_job(tmp_path, job_yaml(server, jobs))
    assert job_named(report, "arch")["summary"]["fetched"] == 0


@pytest.mark.parametrize("scheme", ["imap", "pop3"])
def test_delete_after_deletes_only_stored_messages(tmp_path: Path, mail_server: MailServer, scheme: str) -> None:  # noqa: F811
    server = mail_server
    small = [message("user3", n) for n in range(6)]
    big = message("user3", 50, size=40_000, tag="big")
    smtp_fill(server, "user3", [*small, big])
    source = "imap:INBOX" if scheme == "imap" else "pop3:"
    jobs = [("del", "user3", source, "maildir")]
    code, report, _ = run_job(tmp_path, job_yaml(server, jobs, "    delete_after: true\n    max_size: 20k\n"))
    result = job_named(report, "del")["summary"]
    assert code == 0
    assert (result["fetched"], result["skipped"], result["deleted"]) == (6, 1, 6)
    assert_same(local_messages(tmp_path / "del" / "INBOX", "maildir"), small)
    client = imap_session(server, "user3")
    client.select("INBOX")
    remaining = client.search(None, "ALL")[1][0].split()
    assert len(remaining) == 1
    assert b"big 50" in client.fetch(remaining[0], "(BODY.PEEK[HEADER.FIELDS (SUBJECT)])")[1][0][1]
    client.logout()


@pytest.mark.parametrize("limit", [1, 8])
def test_many_batches_share_few_logins_and_are_stored_in_uid_order(
    tmp_path: Path, mail_server: MailServer, limit: int  # noqa: F811
) -> None:
    server = mail_server
    sent = [message("user1", n, tag="many") for n in range(30)]
    imap_fill(server, "user1", "Many", sent)
    text = job_yaml(server, [("many", "user1", "imap:Many", "maildir")]).replace("batch: 7", "batch: 2")
    code, report, raw = run_job(tmp_path, text.replace("max_connections: 8", f"max_connections: {limit}"))
    assert code == 0, raw[:2000]
    local = tmp_path / "many" / "Many"
    assert_same(local_messages(local, "maildir"), sent)
    # 15 batches: all on the survey's session (FETCHERS is 1), not one login per batch.
    assert FETCHERS == 1
    assert report["hosts"][f"127.0.0.1:{server.imap_port}"]["connects"] == 1
    # Written in UID order (the Q counter in the name), whichever session fetched a batch.
    names = sorted(os.listdir(local / "new"), key=lambda name: int(re.search(r"Q(\d+)\.", name).group(1)))
    uids = [int(name.rsplit("-", 1)[1]) for name in names]
    assert uids == sorted(uids) and len(uids) == len(sent)


def test_accounts_sharing_few_slots_log_in_once_each(tmp_path: Path, mail_server: MailServer) -> None:  # noqa: F811
    """The survey's session goes on to fetch its folder's batches: given back between
    the two, it was closed for another account's survey (two logins per account)."""
    server = mail_server
    sent = {user: [message(user, n, tag="few") for n in range(10)] for user in ("user1", "user2", "user3")}
    for user, messages in sent.items():
        imap_fill(server, user, "Few", messages)
    jobs = [(f"few{i}", user, "imap:Few", "maildir") for i, user in enumerate(sent)]
    text = job_yaml(server, jobs).replace("batch: 7", "batch: 2").replace("max_connections: 8", "max_connections: 2")
    code, report, raw = run_job(tmp_path, text)
    assert code == 0, raw[:2000]
    for i, user in enumerate(sent):
        assert_same(local_messages(tmp_path / f"few{i}" / "Few", "maildir"), sent[user])
    assert report["hosts"][f"127.0.0.1:{server.imap_port}"]["connects"] == len(sent)


@pytest.mark.parametrize("fmt", ["maildir", "mbox"])
def test_kill_9_mid_fetch_leaves_no_partial_message_and_rerun_completes(tmp_path: Path, fmt: str) -> None:
    server = start_mail_server(tmp_path, users=1)
    try:
        sent = [message("user1", n, size=4000, tag="bulk") for n in range(400)]
        imap_fill(server, "user1", "Bulk", sent)
        text = job_yaml(server, [("bulk", "user1", "imap:Bulk", fmt)]).replace("batch: 7", "batch: 10")
        (tmp_path / "jobs.yaml").write_text(text)
        local = tmp_path / "bulk" / ("Bulk" if fmt == "maildir" else "Bulk.mbox")
        child = subprocess.Popen([sys.executable, "-m", "xfer", "run", str(tmp_path / "jobs.yaml"), "--quiet"],
                                 cwd=Path(__file__).resolve().parents[2])
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and child.poll() is None:
            if fmt == "maildir":
                written = len(os.listdir(local / "new")) if (local / "new").is_dir() else 0
            else:
                written = local.stat().st_size if local.exists() else 0
            if written > (60 if fmt == "maildir" else 200_000):
                break
            time.sleep(0.005)
        assert child.poll() is None, "the run ended before it could be killed: make it bigger"
        os.kill(child.pid, signal.SIGKILL)
        child.wait()
        partial = local_messages(local, fmt, after_crash=True)
        assert 0 < len(partial) < len(sent)
        # Maildir: every visible message is whole. mbox: an append is not atomic, so the
        # last one may be torn until the next run truncates it back (checked below).
        whole = partial if fmt == "maildir" else partial[:-1]
        for stored in whole:
            assert sum(stored.endswith(data) for data in sent) == 1
        code, report, raw = run_job(tmp_path, text)
        assert code == 0, raw[:3000]
        assert_same(local_messages(local, fmt), sent)
    finally:
        server.stop()


def test_accounts_dealt_over_processes_share_the_server_and_the_state_file(tmp_path: Path, mail_server: MailServer) -> None:  # noqa: F811
    """-P 2 with the server's limit at 2: each process waits for the other's leases now
    and then. One used to wait holding the state file's write lock (its last item's
    writes, uncommitted), while the other's loop stood in SQLite waiting for that lock
    and so never gave its lease back: jobs failed with "database is locked" after 10 s."""
    server = mail_server
    sent = {user: [message(user, n, tag="split") for n in range(30)] for user in ("user1", "user2", "user3")}
    for user, messages in sent.items():
        imap_fill(server, user, "Split", messages)
    jobs = [(f"split{i}{user}", user, "imap:Split", "maildir") for i in range(2) for user in sent]
    text = job_yaml(server, jobs).replace("batch: 7", "batch: 2").replace("max_connections: 8", "max_connections: 2")
    job_file = tmp_path / "jobs.yaml"
    job_file.write_text(text)
    proc = subprocess.run([sys.executable, "-m", "xfer", "run", str(job_file), "-P", "2", "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name, user, _, _ in jobs:
        assert_same(local_messages(tmp_path / name / "Split", "maildir"), sent[user])
