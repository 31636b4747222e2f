"""Big downloads through the pump (engine/protocols/ftp_pump.py): once a plain data
connection into a `FileSink` has brought `HANDOFF` bytes, a thread moves the rest with
splice. Against pyftpdlib and vsftpd on loopback (and the fault proxy in front of one):
the file arrives byte-identical on both loops, a resume (REST, append mode) continues
it, a stop ends the thread and leaves a clean prefix, a cut connection and a silent one
are errors of their own, a full disk is the OSError it was."""

from __future__ import annotations

import asyncio
import errno
import os
import signal
import stat
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvloop

from tests.faults.proxy import Cut, FaultProxy
from tests.integration.ftp_helpers import REPO, job_report, run_inprocess, tree, write_jobs
from tests.servers.common import require_root
from tests.servers.ftp import FtpServer, ftp_server, pyftpd, running_pyftpdlib, vsftpd  # noqa: F401 (fixtures)
from xfer.errors import TransientError
from xfer.pathsafety import open_new
from xfer.protocols import ftp_pump
from xfer.protocols.ftp import FileSink, FtpConnection, FtpConnector, FtpSettings
from xfer.urls import parse_url

SIZE = 3 * ftp_pump.HANDOFF + 12345  # well past the hand-off, not a whole number of blocks
LOOPS = {"asyncio": asyncio.new_event_loop, "uvloop": uvloop.new_event_loop}


@pytest.fixture
def pumps(monkeypatch: pytest.MonkeyPatch) -> list[ftp_pump.Pump]:
    """Every pump started during the test (the path taken, not a stand-in for it)."""
    started: list[ftp_pump.Pump] = []
    original = ftp_pump.Pump.__init__

    def record(self: ftp_pump.Pump, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        started.append(self)

    monkeypatch.setattr(ftp_pump.Pump, "__init__", record)
    return started


def _source(server: FtpServer, name: str = "big.bin", size: int = SIZE) -> bytes:
    data = os.urandom(size)
    (server.root / name).write_bytes(data)
    return data


async def _connect(server: FtpServer, port: int | None = None, timeout: float = 30, passive: bool = True) -> FtpConnection:
    url = parse_url(server.url("/", with_password=True).replace(f":{server.port}/", f":{port or server.port}/"))
    return await FtpConnector(url, FtpSettings(timeout=timeout, passive=passive)).connect()


async def _retrieve(conn: FtpConnection, fd: int, offset: int = 0, progress: Callable[[int], None] = lambda n: None) -> int:
    try:
        return await conn.retrieve("/big.bin", FileSink(fd, progress), offset)
    finally:
        os.close(fd)


def _slow_server(tmp: Path) -> AbstractContextManager[FtpServer]:
    """pyftpdlib sending at most 4 MiB/s per transfer: a big file is still in the
    pump's hands when the test stops it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyftpdlib.handlers import ThrottledDTPHandler

    slow = type("Slow", (ThrottledDTPHandler,), {"read_limit": 4 * 1024 * 1024, "write_limit": 4 * 1024 * 1024})
    return running_pyftpdlib(tmp, handler_attrs={"dtp_handler": slow})


def _fetch(server: FtpServer, fd: int, offset: int = 0, passive: bool = True) -> int:
    """`_retrieve` on a session of its own, in a loop of its own."""

    async def main() -> int:
        conn = await _connect(server, passive=passive)
        try:
            return await _retrieve(conn, fd, offset)
        finally:
            await conn.close()

    return asyncio.run(main())


@pytest.mark.parametrize("loop", LOOPS)
def test_big_file_arrives_whole_with_its_progress(
    ftp_server: FtpServer, tmp_path: Path, pumps: list[ftp_pump.Pump], loop: str
) -> None:
    data = _source(ftp_server)
    part = tmp_path / "big.bin.part"
    reported: list[int] = []

    async def main() -> int:
        conn = await _connect(ftp_server)
        try:
            received = await _retrieve(conn, open_new(part, exclusive=True), progress=reported.append)
            assert conn.is_usable()  # 226 read: the session goes on
            await conn.list_dir("/")
            return received
        finally:
            await conn.close()

    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        assert runner.run(main()) == SIZE
    assert part.read_bytes() == data
    assert sum(reported) == SIZE
    assert len(pumps) == 1
    pumps[0]._thread.join(10)
    assert not pumps[0]._thread.is_alive()


def test_small_file_and_rate_limited_sink_stay_in_the_loop(pyftpd: FtpServer, tmp_path: Path, pumps: list[ftp_pump.Pump]) -> None:
    small = _source(pyftpd, "small.bin", 100_000)
    data = _source(pyftpd)
    limited: list[int] = []

    async def limit(nbytes: int) -> None:
        limited.append(nbytes)

    async def main() -> None:
        conn = await _connect(pyftpd)
        try:
            for name, sink_limit in (("small.bin", None), ("big.bin", limit)):
                fd = open_new(tmp_path / name, exclusive=True)
                try:
                    await conn.retrieve(f"/{name}", FileSink(fd, lambda n: None, sink_limit))
                finally:
                    os.close(fd)
        finally:
            await conn.close()

    asyncio.run(main())
    assert (tmp_path / "small.bin").read_bytes() == small
    assert (tmp_path / "big.bin").read_bytes() == data
    assert sum(limited) == SIZE
    assert pumps == []


def test_active_mode_big_file(vsftpd: FtpServer, tmp_path: Path, pumps: list[ftp_pump.Pump]) -> None:
    data = _source(vsftpd)

    assert _fetch(vsftpd, open_new(tmp_path / "big.bin", exclusive=True), passive=False) == SIZE
    assert (tmp_path / "big.bin").read_bytes() == data
    assert len(pumps) == 1


def test_resumed_big_download_appends_from_the_offset(ftp_server: FtpServer, tmp_path: Path, pumps: list[ftp_pump.Pump]) -> None:
    data = _source(ftp_server)
    part = tmp_path / "big.bin.part"
    offset = ftp_pump.HANDOFF + 777
    part.write_bytes(data[:offset])

    assert _fetch(ftp_server, open_new(part, append=True), offset) == SIZE - offset
    assert part.read_bytes() == data
    assert len(pumps) == 1


def test_stopped_download_ends_its_thread_and_leaves_a_prefix(tmp_path: Path, pumps: list[ftp_pump.Pump]) -> None:
    part = tmp_path / "big.bin.part"
    with _slow_server(tmp_path / "srv") as server:
        data = _source(server)
        moved: list[int] = []

        async def main() -> None:
            conn = await _connect(server)
            task = asyncio.ensure_future(_retrieve(conn, open_new(part, exclusive=True), progress=moved.append))
            while sum(moved) <= ftp_pump.HANDOFF:  # the pump has taken over and moved some
                await asyncio.sleep(0.01)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            reported = len(moved)
            assert not conn.is_usable()
            await conn.close()
            for pump in pumps:
                await asyncio.to_thread(pump._thread.join, 10)
                assert not pump._thread.is_alive()
            await asyncio.sleep(2 * ftp_pump.FileReceiver.TICK)
            assert len(moved) == reported  # no progress once the transfer has ended

        asyncio.run(main())
    got = part.read_bytes()
    assert len(pumps) == 1
    assert ftp_pump.HANDOFF < len(got) < SIZE
    assert got == data[: len(got)]


def test_cut_data_connection_mid_file_is_a_transient_error(vsftpd: FtpServer, tmp_path: Path, pumps: list[ftp_pump.Pump]) -> None:
    data = _source(vsftpd, size=48 * 1024 * 1024)
    cut = 40 * 1024 * 1024  # the reset may drop what the socket holds (up to tcp_rmem's 32 MiB): the pump has begun
    part = tmp_path / "big.bin.part"
    with FaultProxy(vsftpd.port, ftp=True) as proxy:
        proxy.faults.append(Cut(after=cut, data=True))

        async def main() -> None:
            conn = await _connect(vsftpd, proxy.port)
            try:
                with pytest.raises(TransientError) as caught:
                    await _retrieve(conn, open_new(part, exclusive=True))
                assert "RETR /big.bin" in str(caught.value)
                assert vsftpd.password not in str(caught.value)
            finally:
                await conn.close()

        asyncio.run(main())
        assert proxy.stats.cuts == 1
    got = part.read_bytes()
    assert len(pumps) == 1
    assert len(got) <= cut
    assert got == data[: len(got)]


@contextmanager
def _stalling_server(tmp: Path, after: int) -> Iterator[tuple[FtpServer, threading.Event]]:
    """pyftpdlib whose files stop giving data after `after` bytes until the event is
    set: the data connection stays open and silent (a stalled server)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyftpdlib.filesystems import AbstractedFS

    release = threading.Event()

    class Stalling:
        def __init__(self, file: Any) -> None:
            self._file = file
            self.name = file.name
            self.closed = False

        def read(self, size: int) -> bytes:
            if self._file.tell() >= after:
                release.wait(60)
            return self._file.read(size)

        def close(self) -> None:
            self.closed = True
            self._file.close()

    class StallingFS(AbstractedFS):  # type: ignore[misc]
        def open(self, filename: str, mode: str) -> Any:
            return Stalling(super().open(filename, mode))

    with running_pyftpdlib(tmp, filesystem=StallingFS, handler_attrs={"use_sendfile": False}) as server:
        try:
            yield server, release
        finally:
            release.set()


@pytest.mark.parametrize("handed_off", [True, False], ids=["after-hand-off", "before-hand-off"])
def test_silent_data_connection_times_out(tmp_path: Path, pumps: list[ftp_pump.Pump], handed_off: bool) -> None:
    """A data connection gone silent times out in the pump's hands (after the
    hand-off) and in the loop's (before it: watched by the session's one watchdog),
    after a file that went through on the same session."""
    part = tmp_path / "big.bin.part"
    after = 2 * ftp_pump.HANDOFF if handed_off else 64 * 1024
    with _stalling_server(tmp_path / "srv", after=after) as (server, _):
        small = _source(server, "small.bin", 1000)
        data = _source(server)

        async def main() -> None:
            conn = await _connect(server, timeout=1)
            try:
                got: list[bytes] = []
                assert await conn.retrieve("/small.bin", lambda block: got.append(bytes(block))) == len(small)
                assert b"".join(got) == small
                with pytest.raises(TimeoutError) as caught:
                    await _retrieve(conn, open_new(part, exclusive=True))
                assert "RETR /big.bin" in str(caught.value)
            finally:
                await conn.close()

        asyncio.run(main())
    got = part.read_bytes()
    assert len(pumps) == (1 if handed_off else 0)
    assert (ftp_pump.HANDOFF if handed_off else 0) < len(got) <= after + 65536
    assert got == data[: len(got)]


def test_file_system_without_splice_gets_written(
    pyftpd: FtpServer, tmp_path: Path, pumps: list[ftp_pump.Pump], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file system that refuses a splice into its files (EINVAL) gets the bytes
    read from the pipe and written. The usual ones take splices: the refusal is
    simulated here."""
    data = _source(pyftpd)
    splice = os.splice

    def refusing(src: int, dst: int, count: int, *args: Any, **kwargs: Any) -> int:
        if stat.S_ISREG(os.fstat(dst).st_mode):
            raise OSError(errno.EINVAL, "Invalid argument")
        return splice(src, dst, count, *args, **kwargs)

    monkeypatch.setattr(ftp_pump.os, "splice", refusing)

    assert _fetch(pyftpd, open_new(tmp_path / "big.bin", exclusive=True)) == SIZE
    assert (tmp_path / "big.bin").read_bytes() == data
    assert len(pumps) == 1


def test_full_disk_in_the_pump_is_the_os_error(pyftpd: FtpServer, tmp_path: Path, pumps: list[ftp_pump.Pump]) -> None:
    require_root("mounting a small tmpfs")
    _source(pyftpd)
    disk = tmp_path / "disk"
    disk.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={2 * ftp_pump.HANDOFF}", "tmpfs", str(disk)], check=True)
    try:

        async def main() -> None:
            conn = await _connect(pyftpd)
            try:
                with pytest.raises(OSError) as caught:
                    await _retrieve(conn, open_new(disk / "big.bin.part", exclusive=True))
                assert caught.value.errno == errno.ENOSPC
            finally:
                await conn.close()

        asyncio.run(main())
        assert len(pumps) == 1
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


# -- through ftp.mirror: the `.part` discipline around the pump ---------------------


def _mirror_job(tmp: Path, server: FtpServer) -> Path:
    return write_jobs(tmp, (
        "defaults: {grace_period: 0.2, retries: 0}\n"
        f"jobs:\n  - {{name: m, kind: ftp.mirror, remote: '{server.url('/', with_password=True)}', local: out}}\n"
    ))


def test_mirror_resumes_a_big_part(vsftpd: FtpServer, tmp_path: Path) -> None:
    data = _source(vsftpd)
    (vsftpd.root / "small.txt").write_text("small")
    half = ftp_pump.HANDOFF + 4096
    part = tmp_path / "out/big.bin.part"
    part.parent.mkdir()
    part.write_bytes(data[:half])
    job = job_report(run_inprocess(_mirror_job(tmp_path, vsftpd)), "m")
    assert job["status"] == "ok"
    details = {task["label"]: task["detail"] for task in job["task_list"]}
    assert details["big.bin"] == {"bytes": SIZE - half, "resumed_from": half}
    assert tree(tmp_path / "out") == {"big.bin": data, "small.txt": b"small"}


def test_sigterm_mid_big_file_leaves_its_part_for_the_next_run(tmp_path: Path) -> None:
    part = tmp_path / "out/big.bin.part"
    with _slow_server(tmp_path / "srv") as server:
        data = _source(server)
        path = _mirror_job(tmp_path, server)
        proc = subprocess.Popen([sys.executable, "-m", "xfer", "run", str(path), "--quiet"], cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < deadline:
            if part.exists() and part.stat().st_size > ftp_pump.HANDOFF + 1024 * 1024:
                break
            time.sleep(0.02)
        assert proc.poll() is None, "the run ended before the signal"
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 143, err
        assert set(tree(tmp_path / "out")) == {"big.bin.part"}
        got = part.read_bytes()
        assert ftp_pump.HANDOFF < len(got) < SIZE and got == data[: len(got)]
        job = job_report(run_inprocess(path), "m")
    (task,) = job["task_list"]
    assert task["detail"]["resumed_from"] >= len(got)
    assert tree(tmp_path / "out") == {"big.bin": data}
