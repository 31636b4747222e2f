"""FTP and FTPS sessions over aioftp, as xfer connections.

One `FtpConnection` is one logged-in aioftp `Client`, used by one task at a time
(aioftp cannot run two transfers on one client: issues #75, #157); the per-host limit
is the pool of these. We use aioftp for the control channel (connect, AUTH TLS, login,
replies) and open data connections ourselves, because the transfer path matters for
speed: one `TYPE I` at login instead of one per file; EPSV and the transfer command in
one write once EPSV has worked (the server answers RETR once our data connection is
in); data connections as `asyncio.BufferedProtocol`s that receive into one reused
buffer per session and hand each block straight to the caller (a download writes it
to its file: no stream-buffer copies, no task switch per block); and active mode
(PORT/EPRT), which aioftp's client lacks.

Every library or socket error leaves this module translated (`_guard`):
421 at connect/login -> ConnectionLimitError (the pool shrinks), other 4xx ->
TransientError, 530 -> AuthError, 550 and other 5xx -> PermanentError, TLS
certificate failures -> PermanentError with a hint, lost connections -> TransientError.
Messages name the command and the server's reply, never a USER/PASS/ACCT argument,
and the password is scrubbed from any server text."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
from collections.abc import AsyncIterable, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal, TypeVar

import aioftp
from aioftp.common import SSLSessionBoundContext

from engine.errors import AuthError, ConnectionLimitError, PermanentError, TransientError, XferError
from engine.protocols.ftp_listing import ListingError, RemoteEntry, parse_list_line, parse_mdtm, parse_mlsd_line
from engine.urls import Url

#: Receive buffer of a data connection: the most one callback writes (bounds a stall).
BLOCK_SIZE = 1024 * 1024
#: Commands whose argument is a credential: never shown in messages.
_SECRET_VERBS = frozenset({"USER", "PASS", "ACCT"})
#: A 229 reply's port, `(|||port|)` (any delimiter); the last such group counts, as in aioftp.
_EPSV_PORT = re.compile(r"\((.)\1\1(\d+)\1\)")
#: Servers (host:port) that refused a transfer command sent in the same write as EPSV
#: (425: no data connection yet); they get the command after the connection, for the run.
_UNPIPELINED: set[str] = set()

TlsMode = Literal["none", "explicit", "implicit"]
_P = TypeVar("_P", bound="_DataProtocol")


@dataclass(frozen=True)
class FtpSettings:
    """How to reach one server; part of the pooled connections' identity."""

    tls: TlsMode = "none"
    tls_verify: bool = True
    ca_file: str | None = None
    passive: bool = True
    timeout: float = 30.0  # connect, and idle time allowed on any read

    def ssl_context(self) -> ssl.SSLContext | None:
        if self.tls == "none":
            return None
        context = ssl.create_default_context()
        if self.ca_file:
            context.load_verify_locations(cafile=self.ca_file)
        if not self.tls_verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context


@dataclass
class Listing:
    """One directory as parsed; `bad_lines` are the lines no parser understood."""

    entries: list[RemoteEntry] = field(default_factory=list)
    bad_lines: list[str] = field(default_factory=list)
    exact_times: bool = False  # MLSD (UTC, seconds) rather than LIST


class FtpConnector:
    """Opens `FtpConnection`s to `url` (credentials already filled in)."""

    def __init__(self, url: Url, settings: FtpSettings) -> None:
        self.url = url
        self.settings = settings
        self.endpoint = url.endpoint
        self.identity = ("ftp", url.endpoint, url.login, settings)

    def __repr__(self) -> str:
        return f"<FtpConnector {self.url} {self.settings.tls}>"

    async def connect(self) -> FtpConnection:
        return await FtpConnection.open(self.url, self.settings)


#: A reply as read: (code, [text after the code, continuation lines...]).
Reply = tuple[str, list[str]]


def _mdtm_time(reply: Reply | None) -> datetime | None:
    """The time in an MDTM reply; None for a refusal or a reply we cannot read."""
    if reply is None or reply[0] != "213":
        return None
    try:
        return parse_mdtm(reply[1][-1])
    except ListingError:
        return None


def _matches(code: str, masks: tuple[str, ...]) -> bool:
    """Whether a reply code fits one of `masks` ("226", "2xx")."""
    for mask in masks:
        if mask == code:
            return True
        if mask.isdigit():
            continue
        if mask[1:] == "xx":
            if mask[0] == code[:1]:
                return True
        elif all(m == c or not m.isdigit() for m, c in zip(mask, code)):
            return True
    return False


def _epsv_port(text: str) -> int:
    """The port in a 229 reply: aioftp's parser (an IndexError when there is none),
    with its pattern compiled once."""
    return int(_EPSV_PORT.findall(text)[-1][1])


def _reply_text(info: list[str] | str) -> str:
    lines = [info] if isinstance(info, str) else info
    return " ".join(line.strip(" -") for line in lines if line.strip(" -"))


class _LocalFailure(Exception):
    """A local error (the file write) met inside a data-connection callback; carried
    past the network error translation and re-raised as it was."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _DataProtocol(asyncio.BufferedProtocol):
    """What both ends of a data connection share: done when the connection is
    closed, an idle watchdog (one timer per transfer, not one per read), and the first
    error kept for `finished()`."""

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.loop = asyncio.get_running_loop()
        self._closed = self.loop.create_future()
        self._error: BaseException | None = None
        self._active = False  # data moved since the watchdog last looked
        self._paused = False  # waiting for a rate limit: not idle
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._error is None:
            self._error = exc
        if not self._closed.done():
            self._closed.set_result(None)

    def abort(self, error: BaseException | None = None) -> None:
        if self._error is None:
            self._error = error
        if self.transport is not None:
            self.transport.abort()

    def watch(self, timeout: float) -> None:
        """Abort the transfer when no data moves for `timeout` seconds."""
        if self._timer is None:
            self._active = True
            self._check(timeout)

    def _check(self, timeout: float) -> None:
        if self._closed.done():
            return
        if not self._active and not self._paused:
            self.abort(TimeoutError(f"no data for {timeout:g}s"))
            return
        self._active = False
        self._timer = self.loop.call_later(timeout, self._check, timeout)

    @property
    def done(self) -> bool:
        """Whether the connection is closed already."""
        return self._closed.done()

    async def finished(self, timeout: float) -> None:
        """Wait until the connection is closed (the watchdog starts only if it is not
        yet: a small file has often arrived whole by now); raise what broke it."""
        if not self._closed.done():
            self.watch(timeout)
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


class _Receiver(_DataProtocol):
    """The receiving end: the kernel copies into one reused buffer and each block goes
    to `sink` at once (a download writes it to its file: one `os.write` per block, no
    stream buffer, no task switch per block). A sink returning an awaitable (a rate
    limit) pauses reading until that is done."""

    def __init__(self, sink: Callable[[memoryview], Awaitable[None] | None], buffer: memoryview) -> None:
        super().__init__()
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
            self.abort(_LocalFailure(exc))
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
            self.abort(_LocalFailure(waited.exception()))  # type: ignore[arg-type]
        elif self.transport is not None:
            self.transport.resume_reading()


class _Sender(_DataProtocol):
    """The sending end, with the transport's flow control (pause/resume_writing)."""

    def __init__(self) -> None:
        super().__init__()
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


class _Guard:
    """`with conn._guard(command)`: a class rather than a generator-based context
    manager, as it runs once per file; the translation happens only on an error."""

    __slots__ = ("command", "conn")

    def __init__(self, conn: FtpConnection, command: str) -> None:
        self.conn = conn
        self.command = command

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: object, exc: BaseException | None, tb: object) -> None:
        if exc is not None:
            self.conn._translate(exc, self.command)


class FtpConnection:
    """A logged-in session: listing, retrieving, storing, renaming."""

    def __init__(self, client: aioftp.Client, url: Url, settings: FtpSettings) -> None:
        self.client = client
        self.url = url
        self.endpoint = url.endpoint
        self.settings = settings
        self._secret = url.secret()
        self._broken = False
        self._logged_in = False
        self._use_epsv = True
        self._epsv_works = False  # an EPSV has worked here: transfer commands may follow it in one write
        self._receive_buffer: memoryview | None = None
        self.features: frozenset[str] = frozenset()

    # -- opening and closing -------------------------------------------------

    @classmethod
    async def open(cls, url: Url, settings: FtpSettings) -> FtpConnection:
        context = settings.ssl_context()
        client = aioftp.Client(
            socket_timeout=settings.timeout,
            connection_timeout=settings.timeout,
            ssl=context if settings.tls == "implicit" else None,
        )
        conn = cls(client, url, settings)
        try:
            with conn._guard("connect"):
                await client.connect(url.host, url.port)
            if settings.tls == "explicit":
                with conn._guard("AUTH TLS"):
                    await client.upgrade_to_tls(context)
            with conn._guard("login"):
                await client.login(url.user or "anonymous", url.secret() if url.user else "anonymous@")
            conn._logged_in = True
            await conn._setup()
        except BaseException:
            client.close()
            raise
        return conn

    async def _setup(self) -> None:
        """Learn the features once; make the session binary once for all transfers."""
        with contextlib.suppress(PermanentError):
            _, info = await self._command("FEAT", "211")
            self.features = frozenset(line.strip().upper() for line in info[1:-1] if line.strip())
        if "UTF8" in self.features:
            with contextlib.suppress(PermanentError):
                await self._command("OPTS UTF8 ON", "2xx")
        await self._command("TYPE I", "200")

    @property
    def has_mlsd(self) -> bool:
        return any(feature.split(" ", 1)[0] == "MLST" for feature in self.features)

    @property
    def has_rest(self) -> bool:
        return "REST STREAM" in self.features

    @property
    def has_mdtm(self) -> bool:
        return "MDTM" in self.features

    def is_usable(self) -> bool:
        if self._broken or self.client._stream is None:
            return False
        stream = self.client.stream
        # An idle session the server closed (idle timeout, "421 bye") has EOF queued.
        return not stream.writer.transport.is_closing() and not getattr(stream.reader, "_eof", False)

    async def close(self) -> None:
        if self.client._stream is None:
            return
        if self.is_usable():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self.client.command("QUIT", "2xx")
        with contextlib.suppress(Exception):
            self.client.close()
        self._broken = True

    # -- errors ----------------------------------------------------------------

    def _shown(self, command: str) -> str:
        verb, _, argument = command.partition(" ")
        if verb.upper() in _SECRET_VERBS:
            return verb.upper()
        return f"{verb} {argument}".strip()

    def _scrub(self, text: str) -> str:
        return text.replace(self._secret, "***") if len(self._secret) >= 3 else text

    def _guard(self, command: str) -> _Guard:
        """Translate whatever the library raises during `command` into xfer errors."""
        return _Guard(self, command)

    def _translate(self, exc: BaseException, command: str) -> None:
        """Raise the xfer error for `exc`, met during `command`; return for an
        exception that is not the library's or the network's (it goes on as it is)."""
        shown = self._shown(command)
        where = f"{self.endpoint}: {shown}"
        if isinstance(exc, aioftp.StatusCodeError):
            code = str(exc.received_codes[-1]) if exc.received_codes else "???"
            text = self._scrub(_reply_text(exc.info))
            message = f"{where}: {code} {text}".strip()
            if code == "421":
                self._broken = True
                if not self._logged_in:
                    raise ConnectionLimitError(message) from None
                raise TransientError(message) from None
            if code == "530" or (code.startswith("5") and shown == "login"):
                raise AuthError(message) from None
            if code.startswith("4"):
                raise TransientError(message) from None
            if code.startswith("5"):
                raise PermanentError(message) from None
            self._broken = True  # an unexpected reply: we no longer know the session's state
            raise PermanentError(f"{where}: unexpected reply {code} {text}".strip()) from None
        elif isinstance(exc, ssl.SSLCertVerificationError):
            self._broken = True
            hint = "give the server's CA as ca_file, or set tls_verify: false in its host block"
            raise PermanentError(f"{where}: TLS certificate verification failed: {exc.verify_message}; {hint}") from None
        elif isinstance(exc, ssl.SSLError):
            self._broken = True
            raise TransientError(f"{where}: TLS error: {exc.reason or exc}") from None
        elif isinstance(exc, TimeoutError):
            self._broken = True
            raise TimeoutError(f"{where}: no answer within {self.settings.timeout:g}s") from None
        elif isinstance(exc, (ConnectionError, EOFError, asyncio.IncompleteReadError)):
            self._broken = True
            raise TransientError(f"{where}: connection lost ({type(exc).__name__})") from None
        elif isinstance(exc, OSError):
            self._broken = True
            raise TransientError(f"{where}: {exc.strerror or type(exc).__name__}") from None
        elif isinstance(exc, aioftp.AIOFTPException):
            self._broken = True
            raise PermanentError(f"{where}: {self._scrub(str(exc))}") from None

    async def _command(
        self, line: str | None, expected: str | tuple[str, ...], wait: str | tuple[str, ...] = ()
    ) -> tuple[aioftp.Code, list[str]]:
        """Send `line` (unless None), read replies while they match `wait`, check the
        last against `expected`. Straight on the control stream, with one timeout for
        the whole exchange: aioftp's `command` wraps every line read in `wait_for` (a
        new task per line), which cost more than the transfer of a small file."""
        with self._guard(line or "reply"):
            async with asyncio.timeout(self.settings.timeout):
                return await self._exchange(line, expected, wait)

    async def _exchange(
        self, line: str | None, expected: str | tuple[str, ...], wait: str | tuple[str, ...] = ()
    ) -> tuple[aioftp.Code, list[str]]:
        """`_command` without a timeout of its own, for use inside a larger one."""
        with self._guard(line or "reply"):
            if line is not None:
                self._send(line)
            return await self._expect(expected, wait)

    async def _pair(
        self, ahead: str, line: str, expected: str
    ) -> tuple[Reply, tuple[aioftp.Code, list[str]]]:
        """Pipelining: `ahead` and `line` in one write (one round trip instead of two);
        returns ahead's reply as it came and line's reply, checked."""
        with self._guard(line):
            self._send(ahead, line)
            early = await self._reply()
            return early, await self._expect(expected)

    def _send(self, *lines: str) -> None:
        if any("\r" in line or "\n" in line for line in lines):
            raise aioftp.errors.InvalidCommand("Command must not contain CR/LF")
        self.client.stream.writer.write("".join(line + "\r\n" for line in lines).encode(self.client.encoding))

    async def _expect(self, expected: str | tuple[str, ...], wait: str | tuple[str, ...] = ()) -> tuple[aioftp.Code, list[str]]:
        """Read replies while they match `wait`; check the last against `expected`."""
        waits = (wait,) if isinstance(wait, str) else wait
        code, info = await self._reply()
        while _matches(code, waits):
            code, info = await self._reply()
        expects = (expected,) if isinstance(expected, str) else expected
        if expects and not _matches(code, expects):
            raise aioftp.StatusCodeError(tuple(map(aioftp.Code, expects)), aioftp.Code(code), info)
        return aioftp.Code(code), info

    async def _reply(self) -> Reply:
        """One reply, multi-line ones joined as aioftp does: (code, [text after the code...])."""
        reader = self.client.stream.reader
        encoding = self.client.encoding
        raw = await reader.readline()
        if not raw:
            raise ConnectionResetError
        line = raw.decode(encoding).rstrip()
        code, rest = line[:3], line[3:]
        info = [rest]
        if rest.startswith("-") or not code.isdigit():
            while True:
                raw = await reader.readline()
                if not raw:
                    raise ConnectionResetError
                line = raw.decode(encoding).rstrip()
                if line[:3] == code and line[3:4] != "-":
                    info.append(line[3:])
                    break
                info.append(line)
        return code, info

    # -- data connections ------------------------------------------------------

    def _data_ssl(self) -> ssl.SSLContext | None:
        """The control channel's TLS context bound to its session (servers may require
        the data channel to resume it)."""
        if self.settings.tls == "none":
            return None
        ssl_object = self.client.stream.writer.transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return None
        return SSLSessionBoundContext(ssl.PROTOCOL_TLS_CLIENT, context=ssl_object.context, session=ssl_object.session)

    async def _passive(
        self, ahead: str | None, then: list[str], factory: Callable[[], _P]
    ) -> tuple[asyncio.BaseTransport, _P, Reply | None, bool]:
        """A passive data connection. `ahead` (a command, or None) goes out in the same
        write as EPSV/PASV, its reply is returned as it came. Once EPSV has worked on
        this session, the `then` commands (the transfer) go out in that write too: a
        server reads them only after its 229 and waits for our data connection before
        answering them. Returns whether `then` was sent."""
        loop = asyncio.get_running_loop()
        port = None
        early = None
        if self._use_epsv:
            pipelined = bool(then) and self._epsv_works and self.endpoint not in _UNPIPELINED
            self._send(*([ahead] if ahead else []), "EPSV", *(then if pipelined else []))
            if ahead is not None:
                early = await self._reply()
            code, info = await self._reply()
            if code == "229":
                self._epsv_works = True
                port = _epsv_port(info[-1])
                transport, protocol = await loop.create_connection(factory, self.url.host, port)
                return transport, protocol, early, pipelined
            if pipelined:
                self._broken = True  # replies to `then` are still on their way
            if not code.startswith("5") or pipelined:
                raise aioftp.StatusCodeError((aioftp.Code("229"),), aioftp.Code(code), info)
            self._use_epsv = False  # 5xx: an old server; PASV from now on
            ahead = None
        if ahead is None:
            _, info = await self._exchange("PASV", "227")
        else:
            early, (_, info) = await self._pair(ahead, "PASV", "227")
        # The address in the reply is ignored: a server must not point us elsewhere.
        port = self.client.parse_pasv_response(info[-1])[1]
        transport, protocol = await loop.create_connection(factory, self.url.host, port)
        return transport, protocol, early, False

    async def _active(self, command: str, factory: Callable[[], _P]) -> tuple[asyncio.BaseTransport, _P]:
        """Active mode: listen on the control connection's local address, tell the
        server (EPRT, else PORT), send `command`, accept the server's connection."""
        loop = asyncio.get_running_loop()
        local = self.client.stream.writer.get_extra_info("sockname")[0]
        peer = self.client.stream.writer.get_extra_info("peername")[0]
        family = socket.AF_INET6 if ipaddress.ip_address(local).version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as listener:
            listener.bind((local, 0))
            listener.listen(4)
            listener.setblocking(False)
            port = listener.getsockname()[1]
            try:
                number = 2 if family == socket.AF_INET6 else 1
                await self._exchange(f"EPRT |{number}|{local}|{port}|", "200")
            except PermanentError:
                if family == socket.AF_INET6:
                    raise
                await self._exchange(f"PORT {local.replace('.', ',')},{port >> 8},{port & 0xFF}", "200")
            await self._exchange(command, "1xx")
            while True:
                sock, address = await loop.sock_accept(listener)
                if address[0] == peer:
                    break
                sock.close()  # not the server's data connection
        try:
            return await loop.connect_accepted_socket(factory, sock)
        except BaseException:
            sock.close()
            raise

    async def _open(
        self, command: str, offset: int, ahead: str | None, factory: Callable[[], _P]
    ) -> tuple[asyncio.BaseTransport, _P, Reply | None]:
        """Open a data connection, send `command` (after `REST offset`) and read its
        preliminary reply, then start TLS on the data channel when the control channel
        has it: servers such as vsftpd start the handshake only after their 150. The
        client is the TLS client in both passive and active mode (RFC 4217)."""
        early = None
        then = [f"REST {offset}", command] if offset else [command]
        if self.settings.passive:
            # REST is never pipelined: were it refused, the RETR behind it would send
            # the file from its start.
            transport, protocol, early, sent = await self._passive(ahead, [] if offset else then, factory)
            try:
                if not sent:
                    if offset:
                        await self._exchange(then[0], "350")
                    self._send(command)
                await self._expect("1xx")
            except BaseException as exc:
                transport.abort()
                if sent and isinstance(exc, aioftp.StatusCodeError) and str(exc.received_codes[-1]) == "425":
                    _UNPIPELINED.add(self.endpoint)  # it wants the data connection before the command
                raise
        else:
            if ahead is not None:
                early = await self._exchange(ahead, ())
            if offset:
                await self._exchange(then[0], "350")
            transport, protocol = await self._active(command, factory)
        context = self._data_ssl()
        if context is not None:
            with self._guard("data connection TLS"):
                try:
                    transport = await asyncio.get_running_loop().start_tls(
                        transport, protocol, context, server_hostname=self.url.host  # type: ignore[arg-type]
                    )
                except BaseException:
                    transport.abort()
                    raise
            protocol.connection_made(transport)
        return transport, protocol, early

    async def _transfer(
        self, command: str, factory: Callable[[], _P], offset: int = 0, ahead: str | None = None,
        on_ahead: Callable[[Reply | None], None] | None = None, action: Callable[[_P], Awaitable[None]] | None = None,
    ) -> _P:
        """One data-connection exchange: open it (see `_open`), call `on_ahead` with
        the reply to `ahead`, run `action` (an upload) or wait until the server has sent
        everything, close it, check the final reply.

        A refusal of the command itself (550, 450...) leaves the session usable; any
        failure once the transfer has started leaves the control channel out of step
        (a 426 may still come), so the session is marked broken and the pool replaces it."""
        started = False
        protocol = None
        timeout = self.settings.timeout
        try:
            with self._guard(command):
                # One timeout object for the setup and the final reply; while data
                # moves, the protocol's idle watchdog stands in for it (a small file
                # has often arrived whole by now: then nothing waits in between).
                async with asyncio.timeout(timeout) as scope:
                    _, protocol, early = await self._open(command, offset, ahead, factory)
                    started = True
                    if on_ahead is not None:
                        on_ahead(early)
                    if action is not None or not protocol.done:
                        scope.reschedule(None)
                        if action is not None:
                            protocol.watch(timeout)
                            await action(protocol)
                        await protocol.finished(timeout)
                    else:
                        protocol.check()
                    scope.reschedule(protocol.loop.time() + timeout)
                    await self._expect("2xx", "1xx")
        except BaseException as exc:
            if protocol is not None:
                protocol.abort()
            if started or not isinstance(exc, XferError):
                self._broken = True
            if isinstance(exc, _LocalFailure):
                raise exc.error from None
            raise
        return protocol

    # -- operations --------------------------------------------------------------

    async def list_dir(self, path: str) -> Listing:
        """Entries of directory `path` (absolute), by MLSD when offered, else LIST.

        The directory is entered with CWD and listed without an argument, so no
        server globbing (vsftpd expands `*` in LIST arguments) or option parsing
        (names starting with `-`) can change what is listed."""
        await self.change_dir(path)
        mlsd = self.has_mlsd
        command = "MLSD" if mlsd else "LIST"
        chunks: list[bytes] = []
        await self._transfer(command, lambda: _Receiver(lambda block: chunks.append(bytes(block)), self._buffer()))
        listing = Listing(exact_times=mlsd)
        now = datetime.now(timezone.utc).replace(tzinfo=None)
        for raw in b"".join(chunks).split(b"\n"):
            line = raw.decode("utf-8", "surrogateescape").rstrip("\r")
            if not line.strip():
                continue
            try:
                entry = parse_mlsd_line(line) if mlsd else parse_list_line(line, now=now)
            except ListingError:
                listing.bad_lines.append(line)
                continue
            if entry is not None:
                listing.entries.append(entry)
        return listing

    async def change_dir(self, path: str) -> None:
        await self._command(f"CWD {path}", "2xx")

    async def probe_file(self, path: str) -> tuple[int | None, datetime | None]:
        """SIZE and MDTM of `path` (None where the server cannot say or it is no file)."""
        try:
            _, info = await self._command(f"SIZE {path}", "213")
            size = int(info[-1].strip())
        except (PermanentError, ValueError):
            return None, None
        return size, await self.mdtm(path)

    async def mdtm(self, path: str) -> datetime | None:
        """The exact modification time (UTC), or None when the server cannot say."""
        if not self.has_mdtm:
            return None
        try:
            return _mdtm_time(await self._command(f"MDTM {path}", "213"))
        except PermanentError:
            return None

    async def retrieve(
        self,
        path: str,
        write: Callable[[memoryview], Awaitable[None] | None],
        offset: int = 0,
        on_mtime: Callable[[datetime | None], None] | None = None,
    ) -> int:
        """Remote `path` from `offset` (REST), block by block into `write` (called
        with a view of a reused buffer: use it before returning; return an awaitable to
        slow down, e.g. for a rate limit). Returns the number of bytes received.

        `on_mtime`, if given, is called before the first block with the exact time
        (MDTM; None when the server cannot say), asked in the same write as EPSV: no
        round trip of its own."""
        ahead = f"MDTM {path}" if on_mtime is not None and self.has_mdtm else None
        on_ahead = None if on_mtime is None else (lambda early: on_mtime(_mdtm_time(early)))
        receiver = await self._transfer(f"RETR {path}", lambda: _Receiver(write, self._buffer()), offset, ahead, on_ahead)
        return receiver.received

    async def store(self, path: str, blocks: AsyncIterable[bytes]) -> int:
        """Upload `blocks` as remote `path` (STOR); returns bytes sent."""
        command = f"STOR {path}"
        sent = 0

        async def send(sender: _Sender) -> None:
            nonlocal sent
            source = aiter(blocks)
            while True:
                try:
                    block = await anext(source)
                except StopAsyncIteration:
                    break
                except Exception as exc:  # reading the local file: not a network error
                    raise _LocalFailure(exc) from exc
                await sender.send(block)
                sent += len(block)
            assert sender.transport is not None
            sender.transport.close()  # after what is buffered; the server sees the end

        await self._transfer(command, _Sender, action=send)
        return sent

    def _buffer(self) -> memoryview:
        """This session's receive buffer, made once: one transfer at a time uses it."""
        if self._receive_buffer is None:
            self._receive_buffer = memoryview(bytearray(BLOCK_SIZE))
        return self._receive_buffer

    async def rename(self, source: str, target: str) -> None:
        await self._command(f"RNFR {source}", "350")
        await self._command(f"RNTO {target}", "2xx")

    async def delete(self, path: str) -> None:
        await self._command(f"DELE {path}", "2xx")

    async def make_dir(self, path: str) -> None:
        """Create `path` unless it exists already."""
        try:
            await self._command(f"MKD {path}", "257")
        except PermanentError:
            await self._command(f"CWD {path}", "2xx")  # exists (as a directory) or fails clearly
