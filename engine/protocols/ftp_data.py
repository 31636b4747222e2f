"""FTP data connections as `asyncio.BufferedProtocol`s: the receiving end gets
blocks into one reused buffer per session and hands each straight to the caller (a
download writes it to its file: no stream-buffer copies, no task switch per block);
the sending end uses the transport's flow control. Both are watched for idleness by
their session's `Watchdog`: one timer per session, not one per read or per file. A
big plain download into a file moves on to a thread of its own
(`ftp_pump.FileReceiver`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

#: Receive buffer of a data connection: the most one callback writes (bounds a stall).
BLOCK_SIZE = 1024 * 1024

P = TypeVar("P", bound="DataProtocol")


class LocalFailure(Exception):
    """A local error (the file write) met inside a data-connection callback; carried
    past the network error translation and re-raised as it was."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class Watchdog:
    """Aborts the watched data connection of a session when no data has moved for
    `timeout` seconds (between one and two `timeout`s after the last: a flag set per
    read, looked at once per `timeout`). A session runs one transfer at a time, so one
    timer serves them all, re-armed while a transfer is watched and left to lapse when
    none is: a timer made and cancelled per file was ~2% of a small file's
    instructions (callgrind)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._watched: DataProtocol | None = None
        self._timer: asyncio.TimerHandle | None = None

    def watch(self, protocol: DataProtocol) -> None:
        """Watch `protocol` (instead of the one before, which has ended)."""
        protocol._active = True
        self._watched = protocol
        if self._timer is None:
            self._timer = protocol.loop.call_later(self.timeout, self._check)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self._watched = None

    def _check(self) -> None:
        protocol = self._watched
        if protocol is None or protocol.done:
            self._timer = self._watched = None  # nothing under way: the next watch re-arms
            return
        if not protocol._active and not protocol._paused:
            self._timer = self._watched = None
            protocol.abort(TimeoutError(f"no data for {self.timeout:g}s"))
            return
        protocol._active = False
        self._timer = protocol.loop.call_later(self.timeout, self._check)


class DataProtocol(asyncio.BufferedProtocol):
    """What both ends of a data connection share: done when the connection is
    closed, the flags the session's `Watchdog` reads, and the first error kept for
    `finished()`."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.transport: asyncio.Transport | None = None
        self.loop = loop  # given: asking for the running loop costs a getpid() per file
        self._closed = self.loop.create_future()
        self._error: BaseException | None = None
        self._active = False  # data moved since the watchdog last looked
        self._paused = False  # waiting for a rate limit: not idle

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._error is None:
            self._error = exc
        if not self._closed.done():
            self._closed.set_result(None)

    def abort(self, error: BaseException | None = None) -> None:
        if self._error is None:
            self._error = error
        if self.transport is not None:
            self.transport.abort()

    @property
    def done(self) -> bool:
        """Whether the connection is closed already."""
        return self._closed.done()

    async def finished(self, watchdog: Watchdog) -> None:
        """Wait until the connection is closed (watched only if it is not yet: a
        small file has often arrived whole by now); raise what broke it."""
        if not self._closed.done():
            watchdog.watch(self)
            await self._closed
        self.check()

    def check(self) -> None:
        """Raise what broke the connection, if anything did."""
        if self._error is not None:
            raise self._error

    # Nothing is expected from the server on an upload channel: received bytes are dropped.
    def get_buffer(self, sizehint: int) -> memoryview:
        return memoryview(bytearray(4096))

    def buffer_updated(self, nbytes: int) -> None:
        self._active = True

    def eof_received(self) -> bool:
        return False  # close our side too: connection_lost ends the transfer


class Receiver(DataProtocol):
    """The receiving end: the kernel copies into one reused buffer and each block goes
    to `sink` at once (a download writes it to its file: one `os.write` per block, no
    stream buffer, no task switch per block). A sink returning an awaitable (a rate
    limit) pauses reading until that is done."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, sink: Callable[[memoryview], Awaitable[None] | None], buffer: memoryview
    ) -> None:
        super().__init__(loop)
        self._sink = sink
        self._view = buffer
        self.received = 0

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._view

    def buffer_updated(self, nbytes: int) -> None:
        if self._error is not None:
            return  # aborted: whatever is still delivered goes nowhere
        self._active = True
        self.received += nbytes
        try:
            pending = self._sink(self._view[:nbytes])
        except Exception as exc:
            self.abort(LocalFailure(exc))
            return
        if self.transport is None:
            return
        if pending is not None:
            self.transport.pause_reading()
            self._paused = True
            asyncio.ensure_future(pending).add_done_callback(self._resume)
        elif nbytes == len(self._view):
            # A full buffer: more is waiting. Let the loop run the others before the
            # next block, so one pass of the loop writes one block per connection
            # (the transport would otherwise read on while the socket has data).
            self.transport.pause_reading()
            self.loop.call_soon(self._unpause)

    def _unpause(self) -> None:
        if not self._paused and self.transport is not None and not self.transport.is_closing():
            self.transport.resume_reading()

    def _resume(self, waited: asyncio.Future[None]) -> None:
        self._paused = False
        self._active = True
        if waited.cancelled() or self._closed.done():
            return
        if waited.exception() is not None:
            self.abort(LocalFailure(waited.exception()))  # type: ignore[arg-type]
        elif self.transport is not None:
            self.transport.resume_reading()


class Sender(DataProtocol):
    """The sending end, with the transport's flow control (pause/resume_writing)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(loop)
        self._drained: asyncio.Future[None] | None = None

    def pause_writing(self) -> None:
        self._drained = self.loop.create_future()

    def resume_writing(self) -> None:
        self._active = True
        if self._drained is not None and not self._drained.done():
            self._drained.set_result(None)
        self._drained = None

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self.resume_writing()

    async def send(self, block: bytes) -> None:
        if self._closed.done():
            raise self._error or ConnectionResetError("data connection closed")
        assert self.transport is not None
        self.transport.write(block)
        if self._drained is not None:
            await self._drained
            if self._closed.done() and self._error is not None:
                raise self._error
