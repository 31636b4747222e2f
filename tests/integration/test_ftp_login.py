"""Login in one write (USER and PASS pipelined, then FEAT and TYPE I) and its
exceptions: a server that needs no password, servers whose greeting says they lose
pipelined commands, and a wrong password answered late."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ftp_helpers import fill, job_report, run_inprocess, tree, write_jobs
from tests.servers.ftp import FtpServer, running_pyftpdlib, running_vsftpd

FILES: dict[str, bytes | str] = {f"d{d}/f{i}.txt": f"file {d}/{i}" for d in range(3) for i in range(4)}


def _mirror(tmp: Path, server: FtpServer, url: str) -> dict[str, Any]:
    path = write_jobs(
        tmp,
        f"""
hosts:
  "{server.host}:{server.port}":
    max_connections: 2
jobs:
  - name: m
    kind: ftp.mirror
    remote: "{url}"
    local: out
""",
    )
    return job_report(run_inprocess(path), "m")


def _recording_server(tmp: Path, banner: str) -> tuple[Any, dict[int, list[bytes]]]:
    """pyftpdlib that keeps the chunks each control connection receives."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyftpdlib.handlers import FTPHandler

    chunks: dict[int, list[bytes]] = {}
    lock = threading.Lock()

    def recv(self: Any, size: int) -> bytes:
        data: bytes = FTPHandler.recv(self, size)
        with lock:
            chunks.setdefault(id(self), []).append(data)
        return data

    return running_pyftpdlib(tmp, handler_attrs={"banner": banner, "recv": recv}), chunks


def _login_chunks(chunks: list[bytes]) -> list[bytes]:
    """The chunks up to the one that holds PASS (one session's login)."""
    end = next(i for i, chunk in enumerate(chunks) if chunk.startswith(b"PASS ") or b"\nPASS " in chunk)
    return chunks[: end + 1]


@pytest.mark.parametrize(
    ("banner", "pipelined"),
    [("xfer test pyftpdlib ready", True), ("Microsoft FTP Service", False), ("MikroTik FTP server ready", False)],
)
def test_login_is_one_write_unless_the_greeting_says_otherwise(tmp_path: Path, banner: str, pipelined: bool) -> None:
    running, chunks = _recording_server(tmp_path / "srv", banner)
    with running as server:
        fill(server.root, FILES)
        job = _mirror(tmp_path, server, server.url("/", with_password=True))
        assert job["status"] == "ok" and job["tasks"]["ok"] == len(FILES), job["errors"]
        assert tree(tmp_path / "out") == tree(server.root)
    assert chunks
    for session in chunks.values():
        login = _login_chunks(session)
        if pipelined:
            assert login == [b"USER xfer\r\nPASS " + server.password.encode() + b"\r\n"]
            assert session[len(login)] == b"FEAT\r\nTYPE I\r\n"
        else:
            assert [chunk.split(b" ")[0].strip() for chunk in login] == [b"USER", b"PASS"]


def test_anonymous_login_without_password_stays_in_step(tmp_path: Path) -> None:
    """vsftpd answers USER anonymous with 230: the PASS sent along gets a reply of its
    own, which must not be taken for FEAT's or TYPE's (or any later command's)."""
    with running_vsftpd(tmp_path / "srv") as server:
        fill(server.root, FILES)
        job = _mirror(tmp_path, server, server.url("/", anonymous=True))
        assert job["status"] == "ok" and job["tasks"]["ok"] == len(FILES), job["errors"]
        assert tree(tmp_path / "out") == tree(server.root)
        assert server.log_path is not None
        assert '"230 Already logged in."' in server.log_path.read_text(errors="replace")
