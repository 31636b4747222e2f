"""FTP and FTPS sessions, as xfer connections.

One `FtpConnection` is one logged-in session, used by one task at a time (one FTP
session runs one transfer at a time); the per-host limit is the pool of these. The
control channel is our own protocol on the connection (`ftp_control.ControlChannel`,
replies parsed by `ftp_reply`; TLS implicit, or explicit after AUTH TLS by
`loop.start_tls`), and so are the data connections (`ftp_data`), because the
transfer path matters for speed: PBSZ/PROT, USER and PASS in one write; one `TYPE I`
at login instead of one per file; EPSV and the transfer command in one write once
EPSV has worked (the server answers RETR once our data connection is in); and
active mode (PORT/EPRT). (aioftp did the connecting until its import, ~30 ms of
every run's start-up, outweighed the little it still did.)

Every protocol or socket error leaves this module translated (`_guard`, by the table
in `ftp_errors`): one xfer error the scheduler reads, no credential in any message."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import re
import socket
import ssl
from collections.abc import AsyncIterable, Awaitable, Callable
from datetime import datetime
from typing import Literal, NamedTuple

from xfer.errors import PermanentError, XferError
from xfer.protocols.ftp_control import ControlChannel
from xfer.protocols.ftp_data import BLOCK_SIZE, LocalFailure, P, Receiver, Sender, Watchdog
from xfer.protocols.ftp_listing import Listing
from xfer.protocols.ftp_errors import translate
from xfer.protocols.ftp_pump import AVAILABLE as PUMP_AVAILABLE, FileReceiver, FileSink
from xfer.protocols.ftp_reply import Reply, StatusError, accepted, epsv_port, mdtm_time, pasv_port
from xfer.protocols.ftp_tls import SessionBoundContext
from xfer.retry import ItemTimer
from xfer.urls import Url

__all__ = ["BLOCK_SIZE", "FileSink", "FtpConnection", "FtpConnector", "FtpSettings", "Listing"]

#: Servers (host:port) that refused a transfer command sent in the same write as EPSV
#: (425: no data connection yet); they get the command after the connection, for the run.
_UNPIPELINED: set[str] = set()

#: Greetings of servers known to lose commands sent ahead of their replies (lftp's
#: `ftp:auto-sync-mode`): they get one command at a time at login.
_SYNC_GREETING = re.compile(r"icrosoft FTP Service|MadGoat|MikroTik")

TlsMode = Literal["none", "explicit", "implicit"]


class FtpSettings(NamedTuple):
    """How to reach one server; part of the pooled connections' identity. A named
    tuple rather than a frozen dataclass: the identity is hashed once per task (in C
    here, by a generated Python `__hash__` there), and the class costs a fraction of
    a dataclass's making at import."""

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

    def __init__(self, url: Url, settings: FtpSettings) -> None:
        self.url = url
        self.endpoint = url.endpoint
        self.settings = settings
        self._secret = url.secret()
        self._broken = False
        self._logged_in = False
        self._use_epsv = True
        self._epsv_works = False  # an EPSV has worked here: transfer commands may follow it in one write
        self._receive_buffer: memoryview | None = None
        self._connect_timer: ItemTimer | None = None  # data connections' time limit (one handle, re-armed)
        self._watchdog = Watchdog(settings.timeout)  # of the data connections
        self._control: ControlChannel | None = None  # once connected (and TLS is up)
        self._data_context: ssl.SSLContext | None = None  # TLS data connections', made once
        self.features: frozenset[str] = frozenset()

    # -- opening and closing -------------------------------------------------

    @classmethod
    async def open(cls, url: Url, settings: FtpSettings) -> FtpConnection:
        """Connect (TLS at once when implicit), read the greeting (after any 120
        "wait"), AUTH TLS when explicit, log in."""
        context = settings.ssl_context()
        conn = cls(url, settings)
        loop = asyncio.get_running_loop()
        tls = {} if settings.tls != "implicit" else {"ssl": context, "ssl_handshake_timeout": settings.timeout}
        try:
            with conn._guard("connect"):
                async with asyncio.timeout(settings.timeout):
                    _, conn._control = await loop.create_connection(
                        lambda: ControlChannel(settings.timeout), url.host, url.port, **tls
                    )
                _, info = await conn._expect("220", "120")
            if settings.tls == "explicit":
                await conn._command("AUTH TLS", "234")
                with conn._guard("AUTH TLS"):
                    control = conn.control
                    control.tls_started(await loop.start_tls(  # type: ignore[arg-type]
                        control.transport, control, context, server_hostname=url.host,  # type: ignore[arg-type]
                        ssl_handshake_timeout=settings.timeout,
                    ))
            await conn._login(" ".join(info))
        except BaseException:
            if conn._control is not None:
                conn._control.transport.abort()
            raise
        return conn

    async def _login(self, greeting: str) -> None:
        """With TLS up (explicit or implicit alike), PBSZ 0 and PROT P (RFC 4217: the
        data connections are protected too), USER and PASS in one write; once logged
        in, FEAT (the features, learnt once) and TYPE I (binary once for all transfers)
        in another. Servers whose greeting says they lose pipelined commands (lftp's
        list, `ftp:auto-sync-mode`) get one command at a time.

        PASS goes out without waiting for USER's 331, which is safe: a server that needs
        no password answers USER with 230 and PASS with one more reply (503, or 230
        again) that is read and dropped, so replies stay paired with commands; and the
        password goes to the same server over the same connection, protected as it
        would be after a 331. Nothing follows PASS in its write: pyftpdlib answers a
        wrong password late (after its anti-guessing delay) but commands behind it at
        once, so their replies would come first."""
        user = self.url.user or "anonymous"
        password = self._secret if self.url.user else "anonymous@"
        protect = ["PBSZ 0", "PROT P"] if self.settings.tls != "none" else []
        together = _SYNC_GREETING.search(greeting) is None

        async def step(line: str, expected: str | tuple[str, ...], shown: str) -> Reply:
            with self._guard(shown):
                if not together:
                    self._send(line)
                return await self._expect(expected)

        if together:
            with self._guard("login"):
                self._send(*protect, f"USER {user}", f"PASS {password}")
        for line in protect:
            await step(line, "200", line)
        code, _ = await step(f"USER {user}", ("230", "331"), "login")
        if code == "331":
            await step(f"PASS {password}", "230", "login")
        elif together:
            await self.control.reply()  # PASS's, not needed
        self._logged_in = True
        if together:
            with self._guard("FEAT"):
                self._send("FEAT", "TYPE I")
        with contextlib.suppress(PermanentError):
            _, info = await step("FEAT", "211", "FEAT")
            self.features = frozenset(line.strip().upper() for line in info[1:-1] if line.strip())
        await step("TYPE I", "200", "TYPE I")
        if "UTF8" in self.features:
            with contextlib.suppress(PermanentError):
                await self._command("OPTS UTF8 ON", "2xx")

    @property
    def control(self) -> ControlChannel:
        """The control channel (ConnectionError before the session is connected)."""
        if self._control is None:
            raise ConnectionError("not connected")
        return self._control

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
        # An idle session the server closed (idle timeout, "421 bye") has seen its end.
        return not self._broken and self._control is not None and not self._control.at_end

    async def close(self) -> None:
        if self._control is None:
            return
        if self.is_usable():
            with contextlib.suppress(Exception):
                async with asyncio.timeout(2):
                    await self._command("QUIT", "2xx")
                    await self.control.server_closed()
        with contextlib.suppress(Exception):
            self._control.transport.close()
        self._watchdog.stop()
        if self._connect_timer is not None:
            self._connect_timer.close()
        self._broken = True

    # -- errors ----------------------------------------------------------------

    def _guard(self, command: str) -> _Guard:
        """Translate whatever the library raises during `command` into xfer errors."""
        return _Guard(self, command)

    def _translate(self, exc: BaseException, command: str) -> None:
        """Raise the xfer error for `exc` (see ftp_errors), marking the session broken
        where it says so; return for an exception that goes on as it is."""
        found = translate(
            exc, command, endpoint=self.endpoint, logged_in=self._logged_in,
            timeout=self.settings.timeout, secret=self._secret,
        )
        if found is not None:
            error, broken = found
            self._broken = self._broken or broken
            raise error from None

    async def _command(
        self, line: str | None, expected: str | tuple[str, ...], wait: str | tuple[str, ...] = (), shown: str = "reply"
    ) -> Reply:
        """Send `line` (unless None: then its reply is read, and errors name `shown`),
        read replies while they match `wait`, check the last against `expected`."""
        with self._guard(line or shown):
            if line is not None:
                self._send(line)
            return await self._expect(expected, wait)

    async def _pair(
        self, ahead: str, line: str, expected: str
    ) -> tuple[Reply, Reply]:
        """Pipelining: `ahead` and `line` in one write (one round trip instead of two);
        returns ahead's reply as it came and line's reply, checked."""
        with self._guard(line):
            self._send(ahead, line)
            early = await self.control.reply()
            return early, await self._expect(expected)

    def _send(self, *lines: str) -> None:
        self.control.write(lines)

    async def _expect(self, expected: str | tuple[str, ...], wait: str | tuple[str, ...] = ()) -> Reply:
        """Read replies while they match `wait`; check the last against `expected`."""
        control = self.control
        code, info = await control.reply()
        if wait:
            waiting = accepted(wait)
            while code in waiting:
                code, info = await control.reply()
        if expected and code not in accepted(expected):
            raise StatusError((expected,) if isinstance(expected, str) else expected, code, info)
        return code, info

    # -- data connections ------------------------------------------------------

    def _data_ssl(self) -> ssl.SSLContext | None:
        """The control channel's TLS context bound to its session (servers may require
        the data channel to resume it): one per session (see ftp_tls)."""
        if self.settings.tls == "none":
            return None
        if self._data_context is None:
            control = self.control.transport.get_extra_info("ssl_object")
            if control is None:
                return None
            self._data_context = SessionBoundContext(control)
        return self._data_context

    async def _passive(
        self, ahead: str | None, then: list[str], factory: Callable[[], P]
    ) -> tuple[asyncio.BaseTransport, P, Reply | None, bool]:
        """A passive data connection. `ahead` (a command, or None) goes out in the same
        write as EPSV/PASV, its reply is returned as it came. Once EPSV has worked on
        this session, the `then` commands (the transfer) go out in that write too: a
        server reads them only after its 229 and waits for our data connection before
        answering them. Returns whether `then` was sent."""
        early = None
        if self._use_epsv:
            pipelined = bool(then) and self._epsv_works and self.endpoint not in _UNPIPELINED
            control = self.control
            control.write([*([ahead] if ahead else []), "EPSV", *(then if pipelined else [])])
            if ahead is not None:
                early = await control.reply()
            code, info = await control.reply()
            if code == "229":
                self._epsv_works = True
                transport, protocol = await self._connect(factory, epsv_port(info[-1]))
                return transport, protocol, early, pipelined
            if pipelined:
                self._broken = True  # replies to `then` are still on their way
            if not code.startswith("5") or pipelined:
                raise StatusError(("229",), code, info)
            self._use_epsv = False  # 5xx: an old server; PASV from now on
            ahead = None
        if ahead is None:
            _, info = await self._command("PASV", "227")
        else:
            early, (_, info) = await self._pair(ahead, "PASV", "227")
        # The address in the reply is ignored: a server must not point us elsewhere.
        transport, protocol = await self._connect(factory, pasv_port(info[-1]))
        return transport, protocol, early, False

    async def _connect(self, factory: Callable[[], P], port: int) -> tuple[asyncio.BaseTransport, P]:
        """The passive data connection to `port` of the server, within the timeout (one
        re-armed timer handle per session and task, not one per file): at the control
        connection's peer address (RFC 2428), not the host name resolved again for each
        file (a lookup each, and perhaps another server of a pool)."""
        control = self.control
        loop = control.loop
        task = asyncio.current_task(loop)
        timer = self._connect_timer
        if timer is None or timer.task is not task:
            if timer is not None:
                timer.close()
            timer = self._connect_timer = ItemTimer(self.settings.timeout, task)  # type: ignore[arg-type]
        return await timer.run(loop.create_connection(factory, control.peer or self.url.host, port))

    async def _active(self, command: str, factory: Callable[[], P]) -> tuple[asyncio.BaseTransport, P]:
        """Active mode: listen on the control connection's local address, tell the
        server (EPRT, else PORT), send `command`, accept the server's connection."""
        loop = asyncio.get_running_loop()
        local = self.control.transport.get_extra_info("sockname")[0]
        peer = self.control.peer
        family = socket.AF_INET6 if ipaddress.ip_address(local).version == 6 else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as listener:
            listener.bind((local, 0))
            listener.listen(4)
            listener.setblocking(False)
            port = listener.getsockname()[1]
            try:
                number = 2 if family == socket.AF_INET6 else 1
                await self._command(f"EPRT |{number}|{local}|{port}|", "200")
            except PermanentError:
                if family == socket.AF_INET6:
                    raise
                await self._command(f"PORT {local.replace('.', ',')},{port >> 8},{port & 0xFF}", "200")
            await self._command(command, "1xx")
            async with asyncio.timeout(self.settings.timeout):
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
        self, command: str, offset: int, ahead: str | None, factory: Callable[[], P]
    ) -> tuple[asyncio.BaseTransport, P, Reply | None]:
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
                        await self._command(then[0], "350")
                    self._send(command)
                await self._expect("1xx")
            except BaseException as exc:
                transport.abort()
                if sent and isinstance(exc, StatusError) and exc.code == "425":
                    _UNPIPELINED.add(self.endpoint)  # it wants the data connection before the command
                raise
        else:
            if ahead is not None:
                early = await self._command(ahead, ())
            if offset:
                await self._command(then[0], "350")
            transport, protocol = await self._active(command, factory)
        context = self._data_ssl()
        if context is not None:
            with self._guard("data connection TLS"):
                try:
                    transport = await asyncio.get_running_loop().start_tls(
                        transport, protocol, context, server_hostname=self.url.host,  # type: ignore[arg-type]
                        ssl_handshake_timeout=self.settings.timeout,
                    )
                except BaseException:
                    transport.abort()
                    raise
            protocol.connection_made(transport)
        return transport, protocol, early

    async def _transfer(
        self, command: str, factory: Callable[[], P], offset: int = 0, ahead: str | None = None,
        on_ahead: Callable[[Reply | None], None] | None = None, action: Callable[[P], Awaitable[None]] | None = None,
    ) -> P:
        """One data-connection exchange: open it (see `_open`), call `on_ahead` with
        the reply to `ahead`, run `action` (an upload) or wait until the server has sent
        everything, close it, check the final reply.

        A refusal of the command itself (550, 450...) leaves the session usable; any
        failure once the transfer has started leaves the control channel out of step
        (a 426 may still come), so the session is marked broken and the pool replaces it."""
        started = False
        protocol = None
        try:
            try:
                # Replies are bounded by the control channel's watchdog, the data
                # connection's setup by its own timeouts and the transfer by the data
                # protocol's watchdog (a small file has often arrived whole by now:
                # then nothing waits in between).
                _, protocol, early = await self._open(command, offset, ahead, factory)
                started = True
                if on_ahead is not None:
                    on_ahead(early)
                if action is not None or not protocol.done:
                    if action is not None:
                        self._watchdog.watch(protocol)
                        await action(protocol)
                    await protocol.finished(self._watchdog)
                else:
                    protocol.check()
                await self._expect("2xx", "1xx")
            except BaseException as exc:
                self._translate(exc, command)  # as `_guard` does, without its object per file
                raise
        except BaseException as exc:
            if protocol is not None:
                protocol.abort()
            if started or not isinstance(exc, XferError):
                self._broken = True
            if isinstance(exc, LocalFailure):
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
        await self._transfer(command, lambda: Receiver(self.control.loop, lambda block: chunks.append(bytes(block)), self._buffer()))
        return Listing(b"".join(chunks), exact_times=mlsd)

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
            return mdtm_time(await self._command(f"MDTM {path}", "213"))
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
        A `FileSink` as `write` (a file) lets a big file's bytes move off the loop
        when it has no rate limit (see `_receiver`).

        `on_mtime`, if given, is called before the first block with the exact time
        (MDTM; None when the server cannot say), asked in the same write as EPSV: no
        round trip of its own."""
        ahead = f"MDTM {path}" if on_mtime is not None and self.has_mdtm else None
        on_ahead = None if on_mtime is None else (lambda early: on_mtime(mdtm_time(early)))
        receiver = await self._transfer(f"RETR {path}", lambda: self._receiver(write), offset, ahead, on_ahead)
        return receiver.received

    def _receiver(self, write: Callable[[memoryview], Awaitable[None] | None]) -> Receiver:
        """A big file's bytes move in a thread of their own (`ftp_pump`) when the sink
        is a file without a rate limit and the data connection is not TLS; all others
        in the loop."""
        if isinstance(write, FileSink) and write.limit is None and self.settings.tls == "none" and PUMP_AVAILABLE:
            return FileReceiver(self.control.loop, write, self._buffer(), self.settings.timeout)
        return Receiver(self.control.loop, write, self._buffer())

    async def store(self, path: str, blocks: AsyncIterable[bytes]) -> int:
        """Upload `blocks` as remote `path` (STOR); returns bytes sent."""
        command = f"STOR {path}"
        sent = 0

        async def send(sender: Sender) -> None:
            nonlocal sent
            source = aiter(blocks)
            while True:
                try:
                    block = await anext(source)
                except StopAsyncIteration:
                    break
                except Exception as exc:  # reading the local file: not a network error
                    raise LocalFailure(exc) from exc
                await sender.send(block)
                sent += len(block)
            assert sender.transport is not None
            sender.transport.close()  # after what is buffered; the server sees the end

        await self._transfer(command, lambda: Sender(self.control.loop), action=send)
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
