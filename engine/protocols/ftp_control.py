"""The FTP control channel: our own `asyncio.Protocol` on the control connection,
from the greeting on (TLS or not).

A StreamReader (aioftp's way) costs per line a `readuntil`, a buffer copy and a task
wake-up, and per read a timeout. Here `data_received` hands the bytes to the pure
`ReplyParser` and puts whole replies in a queue; a waiting `reply()` is woken once
per reply, or not at all when its reply came in the same segment as an earlier one
(pipelined commands). Instead of a timeout per read, one watchdog timer per
connection fails a wait that saw no byte for `timeout` seconds (between one and two
`timeout`s, as the data connections' watchdog): it is re-armed once per `timeout`
while replies are awaited, and sleeps while the session is idle.

The end of the stream or a lost connection fails the waiting read (and every later
one, once the queued replies are read): `ConnectionResetError` for an end, the
transport's error for a loss. After AUTH TLS, `loop.start_tls` puts a TLS transport
between the socket and this protocol: `tls_started` hands it over."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Sequence

from xfer.protocols.ftp_reply import FtpProtocolError, Reply, ReplyError, ReplyParser


class ControlChannel(asyncio.Protocol):
    """Replies of one control connection, in order; commands written as they come."""

    transport: asyncio.Transport  # from connection_made on

    def __init__(self, timeout: float, encoding: str = "utf-8") -> None:
        self.encoding = encoding
        self.loop = asyncio.get_running_loop()
        self._timeout = timeout
        self._parser = ReplyParser(encoding)
        self._replies: deque[Reply] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._error: BaseException | None = None  # the end of the stream, once reached
        self._ended = self.loop.create_future()  # done at the end of the stream
        self._timer: asyncio.TimerHandle | None = None
        self._active = False  # bytes came since the watchdog last looked
        #: The server's address (its IP, as connected; "" if closed already).
        self.peer = ""

    def tls_started(self, transport: asyncio.Transport) -> None:
        """Write and close through `transport` (start_tls's) from now on."""
        self.transport = transport

    @property
    def at_end(self) -> bool:
        """Whether the server has closed (an idle session's "421 bye", a lost link)."""
        return self._error is not None or self.transport.is_closing()

    async def server_closed(self) -> None:
        """Wait until the server has closed its side (after its 221 to QUIT): only then
        is the session gone from the server's own count of connections."""
        await asyncio.shield(self._ended)

    def write(self, lines: Sequence[str]) -> None:
        """`lines` with their CR LF, in one write; FtpProtocolError if one holds a CR or
        LF (a command smuggled into an argument)."""
        joined = "".join(lines)
        if "\r" in joined or "\n" in joined:
            raise FtpProtocolError("a command must not contain CR or LF")
        self.transport.write(("\r\n".join(lines) + "\r\n").encode(self.encoding))

    async def reply(self) -> Reply:
        """The next reply; TimeoutError when none comes (see the module docstring)."""
        while not self._replies:
            if self._error is not None:
                raise self._error
            self._waiter = self.loop.create_future()
            if self._timer is None:
                self._active = False
                self._timer = self.loop.call_later(self._timeout, self._watch)
            try:
                await self._waiter
            finally:
                self._waiter = None
        return self._replies.popleft()

    def _watch(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return  # idle: the next wait arms the watchdog again
        if not self._active:
            waiter.set_exception(TimeoutError(f"no reply for {self._timeout:g}s"))
            return
        self._active = False
        self._timer = self.loop.call_later(self._timeout, self._watch)

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def _end(self, error: BaseException) -> None:
        if self._error is None:
            try:
                self._replies.extend(self._parser.end())
            except ReplyError as exc:
                error = exc
            self._error = error
            if not self._ended.done():
                self._ended.set_result(None)
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()

    # -- asyncio.Protocol ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.peer = (transport.get_extra_info("peername") or ("",))[0]

    def data_received(self, data: bytes) -> None:
        self._active = True
        try:
            replies = self._parser.feed(data)
        except ReplyError as exc:
            self._end(exc)
            self.transport.abort()
            return
        if replies:
            self._replies.extend(replies)
            self._wake()

    def eof_received(self) -> bool:
        self._end(ConnectionResetError("the server closed the control connection"))
        return False  # close our side too

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(exc or ConnectionResetError("control connection closed"))
