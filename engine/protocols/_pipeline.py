"""SMTP command pipelining (RFC 2920) on a connection aiosmtplib has set up.

aiosmtplib's protocol reads one reply per command: replies that arrive together are
parsed one at a time and later ones are dropped while the first waits to be picked
up; and each read is an `asyncio.wait_for` (a Task of its own on Python 3.11). So for
a pipelined transaction this module lends the transport to a small reader of its own
(`transport.set_protocol`), writes a group in one write, collects one reply per
command in order, and hands the transport back; aiosmtplib then carries on as before
(RSET, QUIT, connection loss). A transaction is two such exchanges: MAIL + RCPT... +
DATA, then the body."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Sequence

import aiosmtplib
from aiosmtplib.email import quote_address
from aiosmtplib.protocol import COMMAND_INJECTION_REGEX, PERIOD_REGEX, normalize_message_line_endings

#: A reply longer than this without its last line is garbage, not a reply.
_MAX_PENDING = 1 << 20


def parse_replies(buffer: bytearray) -> list[aiosmtplib.SMTPResponse]:
    """Complete replies at the start of `buffer` (consumed from it), multi-line ones
    joined with newlines as aiosmtplib does; a partial reply stays in the buffer."""
    replies = []
    start = 0
    message: list[str] = []
    while (end := buffer.find(b"\n", start)) >= 0:
        line = bytes(buffer[start : end + 1])
        start = end + 1
        try:
            code = int(line[:3])
        except ValueError:
            raise aiosmtplib.SMTPResponseException(-1, f"Malformed SMTP response line: {line!r}") from None
        message.append(line[4:].strip(b" \t\r\n").decode("utf-8", "surrogateescape"))
        if line[3:4] != b"-":
            replies.append(aiosmtplib.SMTPResponse(code, "\n".join(message)))
            message = []
            del buffer[:start]
            start = 0
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


def message_body(data: bytes) -> bytes:
    """`data` as DATA sends it: CRLF line endings, leading dots doubled, the final dot.
    Messages already in that form (a load test's) skip both regular expressions."""
    clean = (
        data.endswith(b"\r\n")
        and data.count(b"\n") == data.count(b"\r\n") == data.count(b"\r")
        and b"\n." not in data
        and not data.startswith(b".")
    )
    if not clean:
        data = PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data))
    return data + b".\r\n"


class _Replies(asyncio.Protocol):
    """Collects `count` replies; forwards connection loss to the protocol it stands in for."""

    def __init__(self, owner: asyncio.BaseProtocol, count: int, done: asyncio.Future[None]) -> None:
        self.owner = owner
        self.count = count
        self.buffer = bytearray()
        self.replies: list[aiosmtplib.SMTPResponse] = []
        self.done = done

    def _fail(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        try:
            self.replies += parse_replies(self.buffer)
        except aiosmtplib.SMTPResponseException as exc:
            self._fail(exc)
            return
        if len(self.replies) >= self.count and not self.done.done():
            self.done.set_result(None)

    def eof_received(self) -> bool:
        self._fail(aiosmtplib.SMTPServerDisconnected("Unexpected EOF received"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(aiosmtplib.SMTPServerDisconnected("Connection lost"))
        self.owner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.owner.pause_writing()

    def resume_writing(self) -> None:
        self.owner.resume_writing()

    def expire(self, transport: asyncio.BaseTransport) -> None:
        transport.close()  # replies still due would pair with later commands
        self._fail(aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response"))


async def exchange(
    transport: asyncio.BaseTransport, owner: asyncio.BaseProtocol, payload: bytes, count: int, timeout: float | None
) -> list[aiosmtplib.SMTPResponse]:
    """Send `payload` (`count` commands with their CRLFs, or a message body) in one
    write; the `count` replies, in order. One timer for the whole exchange.

    Call it only while aiosmtplib waits for nothing (between its commands)."""
    loop = asyncio.get_running_loop()
    reader = _Replies(owner, count, loop.create_future())
    transport.set_protocol(reader)
    timer = loop.call_later(timeout, reader.expire, transport) if timeout else None
    try:
        transport.write(payload)  # type: ignore[attr-defined]
        await reader.done
    finally:
        if timer is not None:
            timer.cancel()
        transport.set_protocol(owner)
    if len(reader.replies) != count or reader.buffer:
        transport.close()
        raise aiosmtplib.SMTPServerDisconnected("the server sent more replies than commands")
    return reader.replies


def transaction_head(sender: str, options: Sequence[str], recipients: Sequence[str]) -> bytes:
    """MAIL FROM (with its options), every RCPT TO and DATA, as one pipelined write."""
    mail = b" ".join([command("MAIL FROM:", sender), *(option.encode("ascii") for option in options)])
    if COMMAND_INJECTION_REGEX.search(mail):
        raise ValueError("Command arg contains a prohibited control character")
    return b"\r\n".join([mail, *(command("RCPT TO:", recipient) for recipient in recipients), b"DATA\r\n"])
