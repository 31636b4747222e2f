"""SMTP command pipelining (RFC 2920) on a connection aiosmtplib has set up.

aiosmtplib's protocol reads one reply per command: replies that arrive together are
parsed one at a time and later ones are dropped while the first waits to be picked
up. So for a pipelined group this module lends the transport to a small reader of
its own (`transport.set_protocol`), writes the group in one write, collects one reply
per command in order, and hands the transport back; aiosmtplib then carries on as
before (body, RSET, QUIT, connection loss)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import aiosmtplib
from aiosmtplib.protocol import COMMAND_INJECTION_REGEX

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


class _Replies(asyncio.Protocol):
    """Collects `count` replies; forwards connection loss to the protocol it stands in for."""

    def __init__(self, owner: asyncio.BaseProtocol, count: int) -> None:
        self.owner = owner
        self.count = count
        self.buffer = bytearray()
        self.replies: list[aiosmtplib.SMTPResponse] = []
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

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


async def read_replies(
    transport: asyncio.BaseTransport, owner: asyncio.BaseProtocol, lines: Sequence[bytes], timeout: float | None
) -> list[aiosmtplib.SMTPResponse]:
    """Send `lines` (commands without CRLF) in one write; their replies, in order.

    Call it only while aiosmtplib waits for nothing (between its commands)."""
    for line in lines:
        if COMMAND_INJECTION_REGEX.search(line):
            raise ValueError("Command arg contains a prohibited control character")
    reader = _Replies(owner, len(lines))
    transport.set_protocol(reader)
    try:
        transport.write(b"".join(line + b"\r\n" for line in lines))  # type: ignore[attr-defined]
        async with asyncio.timeout(timeout):
            await reader.done
    except TimeoutError:
        transport.close()  # replies still due would pair with later commands
        raise aiosmtplib.SMTPReadTimeoutError("Timed out waiting for server response") from None
    finally:
        transport.set_protocol(owner)
    if len(reader.replies) != len(lines) or reader.buffer:
        transport.close()
        raise aiosmtplib.SMTPServerDisconnected("the server sent more replies than commands")
    return reader.replies
