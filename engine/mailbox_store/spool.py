"""Messages too large to hold in memory go to disk as they arrive.

A message over `STREAM_ABOVE` bytes (by the server's size) is fetched in `CHUNK`s
(IMAP partial FETCH, POP3 RETR line by line) into a spool file that the store then
moves or copies into place: memory holds one chunk, never the message. The spool
file is already in the local form (CRLF -> LF, ending with a newline), lives beside
the store (Maildir `tmp/`, next to an mbox) and carries the message's token in its
name, so a crash leaves nothing that recovery does not find and remove. Its header
block is kept in memory (bounded) for the ledger's digest and the mbox `From ` line."""

from __future__ import annotations

import os
import re

#: Messages larger than this (server size) are streamed to disk.
STREAM_ABOVE = 16 * 1024 * 1024
#: Bytes per partial FETCH (and the most held in memory per streamed message).
CHUNK = 1024 * 1024
#: A header block longer than this is cut for the digest (the rest is body as far as we care).
_HEADER_LIMIT = 256 * 1024
_BLANK_LINE = re.compile(rb"\r?\n\r?\n")


class Spool:
    """A message being written to `path` as chunks of its raw (CRLF) bytes arrive."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.header = b""  # the raw header block (up to the blank line), for digests
        self.received = 0  # raw bytes taken in
        self._carry = b""  # a CR at a chunk's end: its LF may start the next chunk
        self._last = b""  # the last byte written
        self._header_done = False
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)

    def write(self, chunk: bytes) -> None:
        self.received += len(chunk)
        if not self._header_done:
            self._take_header(chunk)
        data = self._carry + chunk
        self._carry = b""
        if data.endswith(b"\r"):
            data, self._carry = data[:-1], b"\r"
        self._out(data.replace(b"\r\n", b"\n"))

    def _take_header(self, chunk: bytes) -> None:
        seen = self.header + chunk
        blank = _BLANK_LINE.search(seen)
        if blank is not None or len(seen) >= _HEADER_LIMIT:
            self._header_done = True
            seen = seen[: blank.end()] if blank is not None else seen[:_HEADER_LIMIT]
        self.header = seen

    def _out(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view):]
        if data:
            self._last = data[-1:]

    def finish(self, received: float | None) -> None:
        """The whole message is in: end it with a newline, date it, make it durable."""
        tail, self._carry = self._carry, b""
        self._out(tail)  # a lone CR at the very end stays, as `to_lf` leaves it
        if self._last != b"\n":
            self._out(b"\n")
        if received is not None:
            os.utime(self._fd, (received, received))
        os.fsync(self._fd)
        self.close()

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def discard(self) -> None:
        """Give up on it (a failed fetch): nothing is left behind."""
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass
