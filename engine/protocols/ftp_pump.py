"""A big download's bytes moved off the event loop (issue 15).

In the loop, every received block costs a callback, a Python-level `os.write` and a
pass of the loop, all on one core: four big files at once were CPU-bound there. So
once a plain (non-TLS) data connection has brought `HANDOFF` bytes into a file, a
thread of its own moves the rest socket -> pipe -> file with `os.splice` (Linux): the
bytes never enter Python and the GIL is free throughout, so big files use every core
and the loop stays free for control channels and small files. TLS data connections,
rate-limited downloads and small files keep the in-loop path (`ftp_data.Receiver`):
a thread per 4 KiB file would cost more than it saves.

The thread works on duplicates of the socket and file descriptors, so the caller may
close its own as soon as the transfer ends, stopped or not; the loop stops the thread
by shutting the socket down (its poll wakes at once)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import os
import select
import socket
import threading
from collections.abc import Awaitable, Callable

from xfer.protocols.ftp_data import LocalFailure, Receiver

#: Bytes a download receives in the loop before it moves to a thread (small files never do).
HANDOFF = 4 * 1024 * 1024
#: The most one splice moves (the pipe is made this big where the system allows).
CHUNK = 1024 * 1024
#: Whether this system can pump (Linux with Python's os.splice).
AVAILABLE = hasattr(os, "splice") and hasattr(fcntl, "F_SETPIPE_SZ")


def write_all(fd: int, view: memoryview) -> None:
    while view:
        view = view[os.write(fd, view) :]


class FileSink:
    """A download into a file: `fd` (at the place the next byte goes; the transfer
    owns its writes until it ends), `progress` (called in the loop with bytes moved) and
    `limit` (a rate limit: bytes -> an awaitable that returns when they may go on).
    Called with a block, it is the in-loop sink; without a limit, its fd lets a big
    plain transfer move to a `Pump`."""

    __slots__ = ("fd", "limit", "progress")

    def __init__(
        self, fd: int, progress: Callable[[int], None], limit: Callable[[int], Awaitable[None]] | None = None
    ) -> None:
        self.fd = fd
        self.progress = progress
        self.limit = limit

    def __call__(self, block: memoryview) -> Awaitable[None] | None:
        write_all(self.fd, block)
        self.progress(len(block))
        return None if self.limit is None else self.limit(len(block))


class Pump:
    """One transfer's thread: socket -> file until the server closes the connection,
    no data for `timeout` seconds (TimeoutError) or `stop()`. `moved` counts the bytes
    written so far (read by the loop for progress and the idle watchdog); `done` is
    called in the loop with None or the error once the thread has ended."""

    def __init__(
        self, sock: socket.socket | object, fd: int, timeout: float, done: Callable[[BaseException | None], None]
    ) -> None:
        self.moved = 0
        self._spliced = True  # into the file; False once its file system has refused
        self._timeout = timeout
        self._done = done
        self._loop = asyncio.get_running_loop()
        self._fd = os.dup(fd)
        try:
            _drop_append(self._fd)
            self._sock = socket.socket(fileno=os.dup(sock.fileno()))  # type: ignore[attr-defined]
        except BaseException:
            os.close(self._fd)
            raise
        self._thread = threading.Thread(target=self._run, name="xfer-ftp-pump", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """End the thread soon (from the loop): its socket reads see the end."""
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_RDWR)

    def _run(self) -> None:
        error: BaseException | None = None
        try:
            self._splice()
        except BaseException as exc:  # handed to the loop, raised there
            error = exc
        finally:
            os.close(self._fd)
        with contextlib.suppress(RuntimeError):  # the loop is gone: nobody waits any more
            self._loop.call_soon_threadsafe(self._finish, error)

    def _finish(self, error: BaseException | None) -> None:
        self._sock.close()
        self._done(error)

    def _splice(self) -> None:
        source = self._sock.fileno()
        poller = select.poll()
        poller.register(source, select.POLLIN)
        wait_ms = int(self._timeout * 1000)
        read_end, write_end = os.pipe2(os.O_CLOEXEC)
        try:
            with contextlib.suppress(OSError):  # a smaller pipe only means more splices
                fcntl.fcntl(write_end, fcntl.F_SETPIPE_SZ, CHUNK)
            while True:
                try:
                    count = os.splice(source, write_end, CHUNK, flags=os.SPLICE_F_MOVE | os.SPLICE_F_NONBLOCK)
                except BlockingIOError:
                    if not poller.poll(wait_ms):
                        raise TimeoutError(f"no data for {self._timeout:g}s") from None
                    continue
                if count == 0:
                    return
                try:
                    self._to_file(read_end, count)
                except OSError as exc:
                    raise LocalFailure(exc) from None
        finally:
            os.close(read_end)
            os.close(write_end)

    def _to_file(self, pipe: int, count: int) -> None:
        """`count` bytes from the pipe into the file: spliced, or read and written
        where the file cannot take a splice (EINVAL: a file system without it)."""
        while count:
            if self._spliced:
                try:
                    written = os.splice(pipe, self._fd, count, flags=os.SPLICE_F_MOVE)
                except OSError as exc:
                    if exc.errno != errno.EINVAL:
                        raise
                    self._spliced = False
                    continue
            else:
                block = os.read(pipe, count)
                write_all(self._fd, memoryview(block))
                written = len(block)
            count -= written
            self.moved += written


def _drop_append(fd: int) -> None:
    """Clear O_APPEND (splice refuses to write to an append-mode file) and place `fd`
    at the end, where appending would have written. The flag belongs to the open file
    that `fd` shares with the caller's descriptor: the caller writes nothing meanwhile."""
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    if flags & os.O_APPEND:
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_APPEND)
        os.lseek(fd, 0, os.SEEK_END)


class FileReceiver(Receiver):
    """A `Receiver` into a `FileSink` that hands the connection to a `Pump` once
    `HANDOFF` bytes have arrived. Meanwhile the loop reads the pump's count every
    `TICK` seconds: progress, and activity for the idle watchdog."""

    TICK = 0.1

    def __init__(self, loop: asyncio.AbstractEventLoop, sink: FileSink, buffer: memoryview, timeout: float) -> None:
        super().__init__(loop, sink, buffer)
        self._file = sink
        self._timeout = timeout
        self._pump: Pump | None = None
        self._counted = 0  # of the pump's bytes, those already reported
        self._ticker: asyncio.TimerHandle | None = None

    def buffer_updated(self, nbytes: int) -> None:
        super().buffer_updated(nbytes)
        transport = self.transport
        if self.received >= HANDOFF and self._pump is None and self._error is None and transport is not None:
            if not transport.is_closing():
                transport.pause_reading()
                self._pump = Pump(transport.get_extra_info("socket"), self._file.fd, self._timeout, self._pumped)
                self._ticker = self.loop.call_later(self.TICK, self._tick)

    def _unpause(self) -> None:
        if self._pump is None:
            super()._unpause()

    def _tick(self) -> None:
        self._count()
        self._ticker = self.loop.call_later(self.TICK, self._tick)

    def _count(self) -> None:
        assert self._pump is not None
        moved = self._pump.moved
        if moved != self._counted:
            self._active = True
            self.received += moved - self._counted
            self._file.progress(moved - self._counted)
            self._counted = moved

    def _last_count(self) -> None:
        """The pump's bytes counted a last time, while the transfer is still the
        caller's: no progress reaches it after its end."""
        assert self._ticker is not None
        self._ticker.cancel()
        self._ticker = None
        self._count()

    def _pumped(self, error: BaseException | None) -> None:
        """The pump's thread has ended: the transfer is over, one way or another."""
        if self._ticker is None:
            return  # aborted meanwhile: that error (or the cancellation) stands
        self._last_count()
        if error is not None:
            self.abort(error)
        elif self.transport is not None:
            self.transport.close()

    def abort(self, error: BaseException | None = None) -> None:
        if self._ticker is not None:  # the pump is at work
            self._last_count()
            assert self._pump is not None
            self._pump.stop()
        super().abort(error)
