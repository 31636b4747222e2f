"""NNTP adapter: the standard library's nntplib, run in one thread per connection.

nntplib blocks, so every call of a connection runs in that connection's own
single-thread executor: one call at a time, and a pooled connection never shares
its client between tasks. `close()` shuts the socket down, which breaks a call
still blocked in the thread (`wait_for` cannot cancel a thread).

Two things make it fast against real servers:
- `TCP_QUICKACK` is set after every command sent and every block read. INN's
  nnrpd writes a multi-line reply's status line and its data separately; with the
  client's ACK delayed, Nagle holds the data for about 40 ms per command. Linux
  resets the flag by itself, so it is set again each time.
- Multi-line replies (OVER, BODY, HDR) are read in 64 KiB blocks and split once,
  not line by line; BODY commands are pipelined in windows.
- INN builds a whole OVER reply before it sends a byte of it, so a range is asked
  as pipelined OVER commands of `OVER_STEP` articles, and each reply is handed on
  in pieces as it arrives: the server builds the next reply while the client
  encodes this one (one connection: a scan takes about the longer of the two).

Library exceptions become `engine.errors` types here and nowhere else.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import warnings
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from xfer.errors import AuthError, ConnectionLimitError, PermanentError, TransientError
from xfer.jobfile import NO_HOST_BLOCK
from xfer.news.overview import parse_number
from xfer.protocols._threaded import ThreadedSession, WatchedSockets, open_session
from xfer.protocols._tls import cleartext_allowed, cleartext_refused, client_context
from xfer.urls import Url

if TYPE_CHECKING:
    from xfer.spec import HostConfig

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib

#: Seconds a blocked read may wait for the server before the call fails (transient).
READ_TIMEOUT = 120.0
#: BODY commands sent before reading their replies (small enough never to fill a socket buffer).
BODY_WINDOW = 32
#: Articles per OVER command; a chunk's OVER commands are pipelined. Small, so that
#: little of a chunk is left unoverlapped: the server's first reply, the client's last.
OVER_STEP = 100
#: OVER commands sent ahead of the reply being read (never enough to fill a socket buffer).
OVER_WINDOW = 16
_READ_SIZE = 1 << 16
#: OVER data handed on as soon as this much has arrived (whole lines).
_PIECE = 1 << 16
_TERMINATOR = b"\r\n.\r\n"
_QUICKACK = getattr(socket, "TCP_QUICKACK", None)


class NoSuchGroup(PermanentError):
    """411: the server does not carry the group."""


class NoSuchArticle(PermanentError):
    """420/423/430: the article is gone (cancelled or expired)."""


@dataclass(frozen=True, slots=True)
class GroupInfo:
    name: str
    count: int
    first: int
    last: int


@dataclass(frozen=True, slots=True)
class ActiveGroup:
    name: str
    first: int
    last: int
    flag: str


def _quickack(sock: socket.socket | None) -> None:
    if _QUICKACK is not None and sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.IPPROTO_TCP, _QUICKACK, 1)


class _QuickAck:
    """Mixin for nntplib clients: quick ACKs after each command, and a command count."""

    sock: socket.socket
    commands: Counter[str]

    def _putline(self, line: bytes) -> None:
        super()._putline(line)  # type: ignore[misc]
        _quickack(self.sock)
        verb = line.split(b" ", 1)[0].decode("ascii", "replace").upper()
        self.commands[verb] += 1


class _Client(WatchedSockets, _QuickAck, nntplib.NNTP):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.commands = Counter()
        super().__init__(*args, **kwargs)


class _TlsClient(WatchedSockets, _QuickAck, nntplib.NNTP_SSL):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.commands = Counter()
        super().__init__(*args, **kwargs)


class _Wire:
    """Reads replies from a client's socket file in large blocks (pipelining-safe)."""

    def __init__(self, client: nntplib.NNTP) -> None:
        self._file = client.file
        self._sock = client.sock
        self._buf = bytearray()

    def _fill(self) -> None:
        data = self._file.read1(_READ_SIZE)
        if not data:
            raise EOFError("the server closed the connection")
        _quickack(self._sock)
        self._buf += data

    def status(self) -> str:
        """One status line, e.g. '224 Overview follows'."""
        while (end := self._buf.find(b"\r\n")) < 0:
            if len(self._buf) > 4096:
                raise nntplib.NNTPDataError("status line too long")
            self._fill()
        line = bytes(self._buf[:end]).decode("utf-8", "replace")
        del self._buf[: end + 2]
        return line

    def block(self) -> bytes:
        """The data of a multi-line reply, dot-unstuffed, each line ending in CRLF."""
        return b"".join(self.pieces())  # one piece: joined without a copy

    def pieces(self, least: int | None = None) -> Iterator[bytes]:
        """The data of a multi-line reply as it arrives, in pieces of whole lines (of
        `least` bytes or more, but the last; None: one piece), dot-unstuffed, each line
        ending in CRLF. Working on a piece while the server sends the next overlaps the
        two: an OVER reply then costs the longer of them, not their sum."""
        start = 0
        while True:  # the buffer starts at a line
            if self._buf[:3] == b".\r\n":
                del self._buf[:3]
                return
            if (end := self._buf.find(_TERMINATOR, start)) >= 0:
                yield self._take(end + 2, end + 5)
                return
            if least is not None and len(self._buf) >= least and (cut := self._buf.rfind(b"\r\n")) >= 0:
                yield self._take(cut + 2, cut + 2)
            start = max(0, len(self._buf) - 4)
            self._fill()

    def _take(self, end: int, consumed: int) -> bytes:
        """The buffer's first `end` bytes, unstuffed, dropping `consumed` bytes."""
        with memoryview(self._buf) as view:
            data = bytes(view[:end])  # one copy, not a bytearray slice and then bytes
        del self._buf[:consumed]
        if data.startswith(b".."):
            data = data[1:]
        return data.replace(b"\r\n..", b"\r\n.") if b"\r\n.." in data else data

    def drained(self) -> bool:
        return not self._buf


def _reply_error(status: str) -> nntplib.NNTPError:
    if status[:1] == "4":
        return nntplib.NNTPTemporaryError(status)
    if status[:1] == "5":
        return nntplib.NNTPPermanentError(status)
    return nntplib.NNTPProtocolError(status)


def translate(exc: BaseException, endpoint: str, secret: str = "") -> BaseException:
    """An nntplib/socket exception as the engine error the scheduler understands."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if secret and secret in text:
        text = text.replace(secret, "***")
    message = f"{endpoint}: {text}"
    if isinstance(exc, (nntplib.NNTPTemporaryError, nntplib.NNTPPermanentError)):
        code = text[:3]
        lowered = text.lower()
        if code in ("400", "502") and ("too many" in lowered or "connections" in lowered):
            return ConnectionLimitError(message)
        if code in ("480", "481", "482") or (code == "502" and "auth" in lowered):
            return AuthError(message)
        if code == "411":
            return NoSuchGroup(message)
        if code in ("420", "423", "430"):
            return NoSuchArticle(message)
        return TransientError(message) if code[:1] == "4" else PermanentError(message)
    if isinstance(exc, ssl.SSLCertVerificationError):
        hint = "give the server's CA as ca_file, or set tls_verify: false in its host block"
        return PermanentError(f"{endpoint}: TLS certificate verification failed: {exc.verify_message or text}; {hint}")
    if isinstance(exc, (nntplib.NNTPError, EOFError, OSError)):
        return TransientError(message)
    return exc


class NntpConnection(ThreadedSession):
    """One logged-in NNTP session. Every method runs its I/O in the session's thread."""

    def __init__(self, client: nntplib.NNTP, executor: ThreadPoolExecutor, endpoint: str, secret: str) -> None:
        super().__init__(endpoint, executor)
        self._client = client
        self._secret = secret
        self._format: list[str] | None = None
        #: The group the server has selected for this session (GROUP is skipped when equal).
        self.current_group: str | None = None

    def __repr__(self) -> str:
        return f"<NntpConnection {self.where} group={self.current_group}>"

    @property
    def commands(self) -> Counter[str]:
        """Commands sent on this session, by verb (never with arguments)."""
        return self._client.commands  # type: ignore[attr-defined,no-any-return]

    def _socket(self) -> socket.socket | None:
        return getattr(self._client, "sock", None)

    def _logout(self) -> None:
        self._client.quit()

    def _translate(self, exc: BaseException) -> BaseException:
        return translate(exc, self.where, self._secret)

    def _breaks(self, exc: BaseException) -> bool:
        """Only a status reply (4xx/5xx) leaves the session sound."""
        return not isinstance(exc, (nntplib.NNTPTemporaryError, nntplib.NNTPPermanentError))

    def _send(self, commands: bytes, verb: str, count: int) -> None:
        """Pipelined commands, all written at once (in the session's thread)."""
        self._client.file.write(commands)
        self._client.file.flush()
        _quickack(self._client.sock)
        self.commands[verb] += count

    # -- commands ----------------------------------------------------------------

    async def group(self, name: str) -> GroupInfo:
        """GROUP: select `name` and return its current article numbers."""

        def run() -> GroupInfo:
            self.current_group = None
            _, count, first, last, _ = self._client.group(name)
            self.current_group = name
            return GroupInfo(name, int(count), int(first), int(last))

        return await self.call(run)

    async def select(self, name: str) -> None:
        """Make `name` the current group, unless it already is."""
        if self.current_group != name:
            await self.group(name)

    async def list_active(self, pattern: str) -> list[ActiveGroup]:
        """LIST ACTIVE with a wildmat pattern."""

        def run() -> list[ActiveGroup]:
            _, groups = self._client.list(pattern)
            return [ActiveGroup(g.group, int(g.first), int(g.last), g.flag) for g in groups]

        return await self.call(run)

    async def overview_format(self) -> list[str] | None:
        """LIST OVERVIEW.FMT lines as sent ('Subject:', 'Xref:full'...), None if unsupported."""
        if self._format is None:

            def run() -> list[str] | None:
                try:
                    _, lines = self._client._longcmdstring("LIST OVERVIEW.FMT")
                except nntplib.NNTPPermanentError:
                    return None
                return lines

            self._format = await self.call(run)
        return self._format

    async def over(self, first: int, last: int, feed: Callable[[bytes], object]) -> int:
        """OVER first-last on the current group, as OVER commands of `OVER_STEP` articles,
        `OVER_WINDOW` of them pipelined: INN builds a whole reply before it sends any of
        it, so while `feed` works on one reply (in this connection's thread) the server
        builds the next. `feed` gets the lines in pieces as they arrive; ranges with no
        articles (423) feed nothing. Returns the bytes read."""

        def run() -> int:
            lows = range(first, last + 1, OVER_STEP)
            commands = [b"OVER %d-%d\r\n" % (low, min(last, low + OVER_STEP - 1)) for low in lows]
            window = commands[:OVER_WINDOW]
            self._send(b"".join(window), "OVER", len(window))
            wire = _Wire(self._client)
            size = 0
            failure: nntplib.NNTPError | None = None
            for index in range(len(commands)):
                if index + OVER_WINDOW < len(commands):  # one more for each reply: the window stays full
                    self._send(commands[index + OVER_WINDOW], "OVER", 1)
                status = wire.status()
                if status.startswith("224"):
                    for piece in wire.pieces(_PIECE):
                        size += len(piece)
                        feed(piece)
                elif status[:3] not in ("420", "423"):
                    failure = failure or _reply_error(status)
            if failure is not None:
                raise failure
            return size

        return await self.call(run)

    async def hdr(self, header: str, first: int, last: int) -> bytes:
        """XHDR header first-last: lines 'number value' (for servers without overview)."""

        def run() -> bytes:
            self._client._putcmd(f"XHDR {header} {first}-{last}")
            wire = _Wire(self._client)
            status = wire.status()
            if status[:3] in ("420", "423"):
                return b""
            if not status.startswith("221"):
                raise _reply_error(status)
            return wire.block()

        return await self.call(run)

    async def bodies(self, numbers: Sequence[int]) -> dict[int, bytes]:
        """BODY of each article number in the current group, pipelined. Articles the
        server no longer has (423/430) are left out of the result."""

        def run() -> dict[int, bytes]:
            wire = _Wire(self._client)
            found: dict[int, bytes] = {}
            failure: nntplib.NNTPError | None = None
            for start in range(0, len(numbers), BODY_WINDOW):
                window = numbers[start : start + BODY_WINDOW]
                self._send(b"".join(b"BODY %d\r\n" % number for number in window), "BODY", len(window))
                for number in window:
                    status = wire.status()
                    if status.startswith("222"):
                        found[number] = wire.block()
                    elif status[:3] not in ("420", "423", "430"):
                        failure = failure or _reply_error(status)
                if failure is not None:
                    raise failure
            if not wire.drained():
                raise nntplib.NNTPDataError("unexpected data after the last reply")
            return found

        return await self.call(run)

class NntpConnector:
    """Opens logged-in sessions to one news server (`nntp://` or `nntps://`).

    On `nntp://`, credentials go out in clear only to a server on loopback or with
    `allow_plaintext_auth`; elsewhere the session is upgraded with STARTTLS first, and
    refused when the server does not offer it."""

    def __init__(self, url: Url, host: HostConfig | None = None) -> None:
        self.url = url
        self.host = host or NO_HOST_BLOCK
        self.endpoint = url.endpoint
        self.identity: Hashable = (
            "nntp", url.scheme, url.endpoint, url.login, self.host.tls_verify, str(self.host.ca_file or ""),
        )

    def __repr__(self) -> str:
        return f"<NntpConnector {self.url}>"

    def _open(self) -> nntplib.NNTP:
        """Connect, secure when needed and log in (blocking; runs in the session's thread)."""
        url = self.url
        if url.tls:
            client: nntplib.NNTP = _TlsClient(
                url.host, url.port, ssl_context=client_context(self.host), readermode=True, timeout=READ_TIMEOUT
            )
        else:
            client = _Client(url.host, url.port, readermode=True, timeout=READ_TIMEOUT)
        try:
            if url.user:
                if not url.tls:
                    self._secure(client)
                client.login(url.user, url.secret() or None, usenetrc=False)
        except BaseException:
            _discard(client)
            raise
        return client

    def _secure(self, client: nntplib.NNTP) -> None:
        """STARTTLS before AUTHINFO unless clear credentials are allowed to this server."""
        if cleartext_allowed(client.sock.getpeername()[0], self.host):
            return
        where = f"nntp {self.endpoint}"
        if "STARTTLS" not in client.getcapabilities():
            raise cleartext_refused(where, "nntps")
        try:
            client.starttls(client_context(self.host))
        except (nntplib.NNTPTemporaryError, nntplib.NNTPPermanentError) as exc:
            raise cleartext_refused(where, "nntps", f"STARTTLS failed: {str(exc).strip()}") from None

    async def connect(self) -> NntpConnection:
        secret = self.url.secret()
        client, executor = await open_session(
            self._open, f"nntp {self.url.host}", lambda exc: translate(exc, self.endpoint, secret), _discard
        )
        return NntpConnection(client, executor, self.endpoint, secret)


def _discard(client: nntplib.NNTP) -> None:
    client.sock.close()
    if client.file:
        client.file.close()


def split_hdr_lines(block: bytes) -> Iterable[tuple[int, bytes]]:
    """(number, value) pairs of an XHDR reply block."""
    for line in block.split(b"\r\n"):
        raw, _, value = line.partition(b" ")
        number = parse_number(raw)
        if number is not None:
            yield number, value
