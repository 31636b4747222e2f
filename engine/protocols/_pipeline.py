"""SMTP command pipelining (RFC 2920) on a connection aiosmtplib has set up.

aiosmtplib's protocol reads one reply per command: replies that arrive together are
parsed one at a time and later ones are dropped while the first waits to be picked
up; and each read is an `asyncio.wait_for` (a Task of its own on Python 3.11). So a
session that pipelines hands its transport for good to a `ReplyStream`
(`transport.set_protocol`) once aiosmtplib has connected, said EHLO and logged in:
commands are queued with what to do with their replies, everything queued in one turn
of the event loop goes out in one write, and replies are handed over in order as they
arrive. A transaction is two such groups: MAIL + RCPT... + DATA, then the content; a
load test queues the next transaction's group in the same write as the content before
it (RFC 2920 section 3.1: message content may open a group), and takes that content's
reply when it comes, without waiting for it before going on."""

from __future__ import annotations

import asyncio
import collections
import functools
from collections.abc import Callable

import aiosmtplib
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import COMMAND_INJECTION_REGEX, PERIOD_REGEX, normalize_message_line_endings

#: A reply longer than this without its last line is garbage, not a reply.
_MAX_PENDING = 1 << 20


def parse_replies(buffer: bytearray) -> list[aiosmtplib.SMTPResponse]:
    """Complete replies at the start of `buffer` (consumed from it), multi-line ones
    joined with newlines as aiosmtplib does; a partial reply stays in the buffer.
    What arrived is decoded and split once, not per line: a load test's reads hold
    four replies each (8.2 -> 5.2 us for those four)."""
    last = buffer.rfind(b"\n")
    if last < 0:
        if len(buffer) > _MAX_PENDING:
            raise aiosmtplib.SMTPResponseException(-1, "Response too long")
        return []
    replies = []
    message: list[str] = []
    for line in bytes(buffer[:last]).decode("utf-8", "surrogateescape").split("\n"):
        code = line[:3]
        if not (code.isascii() and code.isdigit()):
            raise aiosmtplib.SMTPResponseException(-1, f"Malformed SMTP response line: {line!r}")
        text = line[4:].strip(" \t\r\n")
        if line[3:4] == "-":
            message.append(text)
        elif message:
            message.append(text)
            replies.append(aiosmtplib.SMTPResponse(int(code), "\n".join(message)))
            message = []
        else:
            replies.append(aiosmtplib.SMTPResponse(int(code), text))
    for _ in message:  # the first lines of a reply still coming stay in the buffer
        last = buffer.rfind(b"\n", 0, last)
    del buffer[: last + 1]
    if len(buffer) > _MAX_PENDING:
        raise aiosmtplib.SMTPResponseException(-1, "Response too long")
    return replies


@functools.lru_cache(maxsize=4096)
def command(verb: str, address: str) -> bytes:
    """`MAIL FROM:<address>` or `RCPT TO:<address>`, checked for injected control
    characters. Cached: a load test sends the same few addresses thousands of times,
    and parsing one (email._parseaddr) cost more than its send."""
    line = verb.encode("ascii") + quote_address(address).encode("ascii")
    if COMMAND_INJECTION_REGEX.search(line):
        raise ValueError("Command arg contains a prohibited control character")
    return line


def message_body(data: bytes, framed: bool = False) -> bytes:
    """`data` as DATA sends it: CRLF line endings, leading dots doubled, the final dot.
    Messages already in that form skip both regular expressions; `framed` says so
    without looking (a load test's are made so: four passes over each message were
    ~6 % of its CPU)."""
    clean = framed or (
        data.endswith(b"\r\n")
        and data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")
        and b"\n." not in data
        and not data.startswith(b".")
    )
    if not clean:
        data = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data))
    return data + b".\r\n"


#: What a queued group's replies go to: the replies, in order, or the error that ended the session.
Handler = Callable[[list[aiosmtplib.SMTPResponse] | Exception], None]


class _Due:
    """Replies still due for one queued group, and who gets them."""

    __slots__ = ("count", "replies", "handler")

    def __init__(self, count: int, handler: Handler) -> None:
        self.count = count
        self.replies: list[aiosmtplib.SMTPResponse] = []
        self.handler = handler


class ReplyStream(asyncio.Protocol):
    """The session's transport from now on: queued groups go out once a loop turn, their
    replies come back in order. Connection loss still reaches aiosmtplib's protocol
    (`owner`), so the client knows it is disconnected. While replies are due the server
    must send something every `timeout` seconds, else the session is closed."""

    def __init__(self, transport: asyncio.Transport, owner: asyncio.BaseProtocol, timeout: float | None) -> None:
        self.transport = transport
        self.owner = owner
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.buffer = bytearray()
        self.due: collections.deque[_Due] = collections.deque()
        self.out: list[bytes] = []
        #: What ended the session (a lost connection, a timeout, garbage), or None.
        self.error: Exception | None = None
        self._deadline = 0.0
        self._timer: asyncio.TimerHandle | None = None
        transport.set_protocol(self)

    def send(self, payload: bytes, count: int, handler: Handler) -> None:
        """Queue `payload` (`count` commands with their CRLFs, or a message's content) to
        go out with whatever else this loop turn queues; `handler` gets its `count`
        replies, or the error that ended the session (at once, if it has ended)."""
        if self.error is not None:
            handler(self.error)
            return
        if not self.out:
            self.loop.call_soon(self._flush)
        self.out.append(payload)
        if not self.due and self.timeout:
            self._deadline = self.loop.time() + self.timeout
            if self._timer is None:
                self._timer = self.loop.call_at(self._deadline, self._watch)
        self.due.append(_Due(count, handler))

    async def exchange(self, payload: bytes, count: int) -> list[aiosmtplib.SMTPResponse]:
        """`send`, and wait for the replies; raises the error that ended the session."""
        future: asyncio.Future[list[aiosmtplib.SMTPResponse]] = self.loop.create_future()
        self.send(payload, count, functools.partial(_settle, future))
        return await future

    def _flush(self) -> None:
        payload = b"".join(self.out)
        self.out.clear()
        if not self.transport.is_closing():
            self.transport.write(payload)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            replies = parse_replies(self.buffer)
        except aiosmtplib.SMTPResponseException as exc:
            self._end(exc)
            return
        due = self.due
        for reply in replies:
            if not due:  # replies would pair with later commands
                self._end(aiosmtplib.SMTPServerDisconnected("the server sent more replies than commands"))
                return
            group = due[0]
            group.replies.append(reply)
            if len(group.replies) == group.count:
                due.popleft()
                group.handler(group.replies)
        if replies and due and self.timeout:
            self._deadline = self.loop.time() + self.timeout

    def _watch(self) -> None:
        self._timer = None
        if not self.due or self.error is not None:
            return
        if self.loop.time() < self._deadline:
            self._timer = self.loop.call_at(self._deadline, self._watch)
            return
        self._end(aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"))

    def _end(self, error: Exception) -> None:
        """The session is over: every group still waiting gets `error`."""
        if self.error is None:
            self.error = error
            self.transport.close()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        due, self.due = self.due, collections.deque()
        for group in due:
            group.handler(self.error)

    def eof_received(self) -> bool:
        self._end(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._end(aiosmtplib.SMTPServerDisconnected("Connection lost"))
        self.owner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.owner.pause_writing()

    def resume_writing(self) -> None:
        self.owner.resume_writing()


def _settle(future: asyncio.Future[list[aiosmtplib.SMTPResponse]], outcome: list[aiosmtplib.SMTPResponse] | Exception) -> None:
    if future.done():
        return
    if isinstance(outcome, Exception):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


@functools.lru_cache(maxsize=4096)
def transaction_head(sender: str, options: tuple[str, ...], recipients: tuple[str, ...]) -> bytes:
    """MAIL FROM (with its options), every RCPT TO and DATA, as one pipelined write.
    Cached: a load test sends the same few envelopes (and sizes) over and over."""
    mail = b" ".join([command("MAIL FROM:", sender), *(option.encode("ascii") for option in options)])
    if COMMAND_INJECTION_REGEX.search(mail):
        raise ValueError("Command arg contains a prohibited control character")
    return b"\r\n".join([mail, *(command("RCPT TO:", recipient) for recipient in recipients), b"DATA\r\n"])
