"""Smoke tests of the FTP server fixtures with the standard library's ftplib: if these
fail, the engine's FTP tests would fail for reasons that are not the engine's."""

from __future__ import annotations

import io
import os
import socket
import ssl
import threading
import time
from datetime import datetime, timezone
from ftplib import FTP, FTP_TLS, error_perm, error_temp
from pathlib import Path

import pytest

from xfer.protocols.ftp_listing import parse_list_line, parse_mdtm, parse_mlsd_line
from tests.servers.ftp import (
    FtpServer,
    ftp_server,
    pyftpd,
    running_pyftpdlib,
    running_vsftpd,
    vsftpd,
)

__all__ = ["ftp_server", "pyftpd", "vsftpd"]  # fixtures, used by name

pytestmark = pytest.mark.timeout(60)


def connect(server: FtpServer, *, anonymous: bool = False) -> FTP:
    client = FTP(timeout=10)
    client.connect(server.host, server.port)
    if anonymous:
        client.login()
    else:
        client.login(server.user, server.password)
    return client


def retr(client: FTP, name: str) -> bytes:
    buffer = io.BytesIO()
    client.retrbinary(f"RETR {name}", buffer.write)
    return buffer.getvalue()


def fill(root: Path) -> None:
    (root / "hello.txt").write_bytes(b"hello\n")
    (root / "sub dir").mkdir()
    (root / "sub dir" / "inner.bin").write_bytes(bytes(range(256)) * 100)
    os.utime(root / "hello.txt", (1_000_000_000, 1_000_000_000))


def test_anonymous_list_and_retr(ftp_server: FtpServer) -> None:
    fill(ftp_server.root)
    client = connect(ftp_server, anonymous=True)
    try:
        lines: list[str] = []
        client.retrlines("LIST", lines.append)
        names = {line.rsplit(" ", 1)[-1] for line in lines}
        assert {"hello.txt", "dir"} <= names  # "sub dir" split on purpose
        assert retr(client, "hello.txt") == b"hello\n"
        assert retr(client, "sub dir/inner.bin") == bytes(range(256)) * 100
        assert client.size("hello.txt") == 6
    finally:
        client.close()


def test_anonymous_cannot_write(ftp_server: FtpServer) -> None:
    client = connect(ftp_server, anonymous=True)
    try:
        with pytest.raises(error_perm):
            client.storbinary("STOR nope.txt", io.BytesIO(b"x"))
    finally:
        client.close()
    assert not (ftp_server.root / "nope.txt").exists()


def test_user_stor_and_retr(ftp_server: FtpServer) -> None:
    fill(ftp_server.root)  # as root: vsftpd's default ACL lets its user write there
    payload = os.urandom(300_000)
    client = connect(ftp_server)
    try:
        client.storbinary("STOR up.bin", io.BytesIO(payload))
        client.storbinary("STOR sub dir/up2.bin", io.BytesIO(b"two"))
        assert retr(client, "up.bin") == payload
        client.mkd("new")
        client.delete("hello.txt")
    finally:
        client.quit()
    assert (ftp_server.root / "up.bin").read_bytes() == payload
    assert (ftp_server.root / "sub dir" / "up2.bin").read_bytes() == b"two"
    assert (ftp_server.root / "new").is_dir()
    assert not (ftp_server.root / "hello.txt").exists()


def test_chown_root_for_files_moved_in(tmp_path: Path) -> None:
    with running_vsftpd(tmp_path) as server:
        outside = tmp_path / "outside"
        outside.mkdir(mode=0o755)
        (outside / "f.txt").write_bytes(b"old")
        os.rename(outside, server.root / "moved")  # keeps its root-only permissions
        client = connect(server)
        try:
            with pytest.raises(error_perm, match="^553"):
                client.storbinary("STOR moved/f.txt", io.BytesIO(b"new"))
            server.chown_root()
            client.storbinary("STOR moved/f.txt", io.BytesIO(b"new"))
        finally:
            client.quit()
        assert (server.root / "moved" / "f.txt").read_bytes() == b"new"


def test_wrong_password_is_530(ftp_server: FtpServer) -> None:
    client = FTP(timeout=10)
    client.connect(ftp_server.host, ftp_server.port)
    try:
        with pytest.raises(error_perm, match="^530"):
            client.login(ftp_server.user, "wrong")
    finally:
        client.close()


def test_listings_parse_to_the_files_on_disk(ftp_server: FtpServer) -> None:
    """The real servers' LIST (and pyftpdlib's MLSD) through our parser."""
    fill(ftp_server.root)
    os.symlink("hello.txt", ftp_server.root / "link")
    client = connect(ftp_server)
    try:
        now = datetime.now(timezone.utc)
        lines: list[str] = []
        client.retrlines("LIST -a", lines.append)
        entries = [parse_list_line(line, now=now) for line in lines]
        by_name = {entry.name: entry for entry in entries if entry is not None}
        assert set(by_name) == {"hello.txt", "sub dir", "link"}
        assert by_name["hello.txt"].type == "file" and by_name["hello.txt"].size == 6
        assert by_name["hello.txt"].mtime == datetime(2001, 9, 9)  # UTC, day precision
        assert by_name["sub dir"].type == "dir"
        assert (by_name["link"].type, by_name["link"].link_target) == ("link", "hello.txt")
        assert parse_mdtm(client.sendcmd("MDTM hello.txt")) == datetime(
            2001, 9, 9, 1, 46, 40, tzinfo=timezone.utc
        )
        if ftp_server.kind == "pyftpdlib":  # vsftpd has no MLSD
            lines = []
            client.retrlines("MLSD", lines.append)
            mlsd = {e.name: e for e in map(parse_mlsd_line, lines) if e is not None}
            assert mlsd["hello.txt"].mtime == datetime(2001, 9, 9, 1, 46, 40,
                                                       tzinfo=timezone.utc)
            assert mlsd["sub dir"].type == "dir"
    finally:
        client.quit()


def test_pyftpdlib_counts_concurrent_connections(pyftpd: FtpServer) -> None:
    clients = [connect(pyftpd) for _ in range(3)]
    try:
        assert pyftpd.peak_connections == 3
        assert pyftpd.open_connections == 3
    finally:
        for client in clients:
            client.quit()
    deadline = time.monotonic() + 5
    while pyftpd.open_connections and time.monotonic() < deadline:
        time.sleep(0.01)
    assert pyftpd.open_connections == 0
    assert pyftpd.peak_connections == 3


def test_pyftpdlib_counts_connections_opened_in_parallel(pyftpd: FtpServer) -> None:
    barrier = threading.Barrier(3)
    clients: list[FTP] = []
    lock = threading.Lock()

    def open_one() -> None:
        barrier.wait()
        client = connect(pyftpd, anonymous=True)
        with lock:
            clients.append(client)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(15)
    try:
        assert len(clients) == 3
        assert pyftpd.peak_connections == 3
    finally:
        for client in clients:
            client.close()


@pytest.mark.parametrize("limit", ["max_cons", "max_cons_per_ip"])
def test_pyftpdlib_limits_answer_421(tmp_path: Path, limit: str) -> None:
    with running_pyftpdlib(tmp_path, **{limit: 2}) as server:
        clients = [connect(server, anonymous=True) for _ in range(2)]
        try:
            with pytest.raises(error_temp, match="^421"):
                connect(server, anonymous=True)
            assert server.refused_connections == 1
        finally:
            for client in clients:
                client.close()


def test_vsftpd_max_per_ip_answers_421(tmp_path: Path) -> None:
    with running_vsftpd(tmp_path, max_per_ip=2) as server:
        clients = [connect(server, anonymous=True) for _ in range(2)]
        try:
            with pytest.raises(error_temp, match="^421"):
                connect(server, anonymous=True)
        finally:
            for client in clients:
                client.close()


@pytest.mark.parametrize("kind", ["pyftpdlib", "vsftpd"])
def test_tls(tmp_path: Path, kind: str) -> None:
    running = running_pyftpdlib if kind == "pyftpdlib" else running_vsftpd
    with running(tmp_path, tls=True) as server:
        assert server.ca_pem is not None
        (server.root / "secret.txt").write_bytes(b"tls\n")
        context = ssl.create_default_context(cafile=str(server.ca_pem))
        client = FTP_TLS(context=context, timeout=10)
        client.connect(server.host, server.port)
        try:
            client.auth()
            client.login(server.user, server.password)
            client.prot_p()
            assert retr(client, "secret.txt") == b"tls\n"
            client.storbinary("STOR up.txt", io.BytesIO(b"up"))
            assert isinstance(client.sock, ssl.SSLSocket)
        finally:
            client.quit()
        assert (server.root / "up.txt").read_bytes() == b"up"
        # tls_required: a plain login is refused
        plain = FTP(timeout=10)
        plain.connect(server.host, server.port)
        try:
            with pytest.raises(error_perm):
                plain.login(server.user, server.password)
        finally:
            plain.close()


def test_pyftpdlib_serves_a_hostile_filesystem(tmp_path: Path) -> None:
    from pyftpdlib.filesystems import AbstractedFS

    hostile = ["../escape", "/etc/passwd", "a/../../b"]

    class HostileFS(AbstractedFS):
        def listdir(self, path: str) -> list[str]:
            return hostile + ["ok.txt"]

        # format_list/format_mlsx stat every name joined to the directory; answer
        # with the root's own stat so the hostile names are not looked up.
        def lstat(self, path: str) -> os.stat_result:
            return os.lstat(self.root)

        def stat(self, path: str) -> os.stat_result:
            return os.stat(self.root)

    with running_pyftpdlib(tmp_path, filesystem=HostileFS) as server:
        client = connect(server, anonymous=True)
        try:
            lines: list[str] = []
            client.retrlines("MLSD", lines.append)
            names = [entry.name for entry in map(parse_mlsd_line, lines) if entry]
            assert names == hostile + ["ok.txt"]
        finally:
            client.close()


@pytest.mark.parametrize("kind", ["pyftpdlib", "vsftpd"])
def test_stop_closes_connected_clients(tmp_path: Path, kind: str) -> None:
    running = running_pyftpdlib if kind == "pyftpdlib" else running_vsftpd
    with running(tmp_path) as server:
        client = connect(server)
        started = time.monotonic()
        server.stop()
        stopped_in = time.monotonic() - started
        server.stop()  # idempotent
    assert stopped_in < 3
    with pytest.raises((EOFError, OSError)):
        client.sendcmd("NOOP")
        client.sendcmd("NOOP")
    client.close()
    with pytest.raises(OSError):
        socket.create_connection((server.host, server.port), timeout=1).close()
