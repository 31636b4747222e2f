"""Sockets connected ahead (`engine/connect_ahead.py`) against real Dovecot: a session
logs in over one, a failed or stale one is never used, a forked run's processes each
keep their own, and `xfer run` leaves none unused (Dovecot logs every connection that
closed without a login attempt). How the pools count and hand them out:
tests/unit/test_pool_ahead.py."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

import xfer
from xfer import connect_ahead
from xfer.errors import XferError
from xfer.protocols.imap import ImapConnector
from xfer.protocols.pop3 import Pop3Connector
from xfer.spec import HostConfig
from xfer.urls import parse_url
from tests.integration.test_mail_fetch import imap_fill, job_yaml, local_messages, message
from tests.servers.mail import MailServer, mail_server  # noqa: F401  (fixture)


@pytest.fixture(autouse=True)
def _nothing_left_ahead() -> None:
    yield
    connect_ahead.close_all()


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def unused_connections(server: MailServer) -> int:
    """Connections Dovecot logged as closed without a login attempt (its start-up
    probes among them, when they got that far), once its log has stopped growing."""
    log = server.root / "log" / "dovecot.log"
    count = -1
    while count != (count := log.read_text(errors="replace").count("no auth attempts")):
        time.sleep(0.3)
    return count


def imap_url(server: MailServer, port: int | None = None) -> str:
    return f"imap://{server.address('user1')}:{server.users['user1']}@127.0.0.1:{port or server.imap_port}/INBOX"


def test_wanted_is_a_socket_a_mail_job_within_the_host_limit_and_the_global_bound(tmp_path: Path) -> None:
    jobs = [
        {"name": f"imap{n}", "kind": "mail.fetch", "source": "imap://u:p@127.0.0.1:1143/", "dest": f"d{n}"}
        for n in range(3)
    ] + [
        {"name": "pop", "kind": "mail.fetch", "source": "pop3://u:p@127.0.0.1:1110/", "dest": "p"},
        {"name": "tls", "kind": "mail.fetch", "source": "imaps://u:p@127.0.0.1:1993/", "dest": "t"},
        {"name": "ftp", "kind": "ftp.mirror", "remote": "ftp://127.0.0.1:1143/", "local": "f"},
    ]
    (file,) = xfer.load({"hosts": {"127.0.0.1": {"max_connections": 2}}, "jobs": jobs}, base_dir=tmp_path).files
    pairs = [(file, spec) for spec in file.jobs]
    imap, pop = ("127.0.0.1", 1143), ("127.0.0.1", 1110)
    assert connect_ahead.wanted(pairs, None) == Counter({imap: 2, pop: 1})  # the host's limit; no TLS, no FTP
    assert connect_ahead.wanted(pairs, 2) == Counter({imap: 2})  # the run's global bound
    assert connect_ahead.wanted(pairs, None, lambda endpoint: 2) == Counter({imap: 1, pop: 1})  # two processes share


def handed(address: tuple[str, int]) -> list[connect_ahead.AheadSocket]:
    """What the scheduler's pools would adopt for `address`."""
    return list(connect_ahead.hand_over().get(address, ()))


@pytest.mark.parametrize("protocol", ["imap", "pop3"])
def test_a_session_logs_in_over_a_socket_connected_ahead(mail_server: MailServer, protocol: str) -> None:  # noqa: F811
    server = mail_server
    port = server.imap_port if protocol == "imap" else server.pop3_port
    connect_ahead.open_for(Counter({("127.0.0.1", port): 1}))
    (ahead,) = handed(("127.0.0.1", port))
    url = parse_url(imap_url(server) if protocol == "imap" else
                    f"pop3://{server.address('user1')}:{server.users['user1']}@127.0.0.1:{port}")
    connector = (ImapConnector if protocol == "imap" else Pop3Connector)(url, HostConfig(), ahead=True)

    async def main() -> None:
        conn = await connector.connect(ahead=ahead)
        try:
            assert conn.client.sock is ahead.sock  # logged in over it
            if protocol == "imap":
                assert conn.client.state == "SELECTED"
        finally:
            await conn.close()

    asyncio.run(main())


def test_a_refused_connect_is_not_used_and_the_session_reports_its_own(mail_server: MailServer) -> None:  # noqa: F811
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    before = open_fds()
    connect_ahead.open_for(Counter({("127.0.0.1", closed_port): 2}))
    first, second = handed(("127.0.0.1", closed_port))
    assert connect_ahead.usable(first, 1.0) is None
    connector = ImapConnector(parse_url(imap_url(mail_server, closed_port)), HostConfig(), ahead=True)
    with pytest.raises(XferError, match="refused"):
        asyncio.run(connector.connect(ahead=second))
    assert open_fds() == before  # both refused sockets closed


def test_a_socket_older_than_fresh_is_closed_and_the_session_connects_anew(
    mail_server: MailServer, monkeypatch: pytest.MonkeyPatch,  # noqa: F811
) -> None:
    connect_ahead.open_for(Counter({("127.0.0.1", mail_server.imap_port): 1}))
    (stale,) = handed(("127.0.0.1", mail_server.imap_port))
    monkeypatch.setattr(connect_ahead, "FRESH", 0.0)
    connector = ImapConnector(parse_url(imap_url(mail_server)), HostConfig(), ahead=True)

    async def main() -> None:
        conn = await connector.connect(ahead=stale)
        try:
            assert conn.client.state == "SELECTED"
            assert conn.client.sock is not stale.sock and stale.sock.fileno() == -1  # closed, not used
        finally:
            await conn.close()

    asyncio.run(main())


def test_each_forked_process_keeps_only_the_sockets_dealt_to_it(mail_server: MailServer) -> None:  # noqa: F811
    address = ("127.0.0.1", mail_server.imap_port)
    before = open_fds()
    connect_ahead.open_for(Counter({address: 4}))
    connect_ahead.deal([Counter({address: 1}), Counter({address: 2})])
    assert open_fds() == before + 3  # the fourth, dealt to no process, is closed
    connect_ahead.keep(1)  # what process 1 does after the fork
    assert open_fds() == before + 2  # its copy of process 0's socket closed
    kept = handed(address)
    assert len(kept) == 2 and handed(address) == []
    for ahead in kept:
        ahead.sock.close()
    assert open_fds() == before


def test_xfer_run_leaves_no_socket_it_connected_ahead_unused(tmp_path: Path, mail_server: MailServer) -> None:  # noqa: F811
    """Three accounts, two processes (the default), a limit of 2: each process keeps one
    socket; every connection the server saw logged in."""
    server = mail_server
    sent = {user: [message(user, n, tag="ahead") for n in range(5)] for user in ("user1", "user2", "user3")}
    for user, messages in sent.items():
        imap_fill(server, user, "Ahead", messages)
    jobs = [(f"ahead{user}", user, "imap:Ahead", "maildir") for user in sent]
    job_file = tmp_path / "jobs.yaml"
    job_file.write_text(job_yaml(server, jobs).replace("max_connections: 8", "max_connections: 2"))
    unused = unused_connections(server)
    proc = subprocess.run([sys.executable, "-m", "xfer", "run", str(job_file), "--quiet"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    for name, user, _, _ in jobs:
        assert sorted(local_messages(tmp_path / name / "Ahead", "maildir")) == sorted(sent[user])
    assert unused_connections(server) == unused
