"""FTP and FTPS sessions over aioftp, as xfer connections.

One `FtpConnection` is one logged-in aioftp `Client`, used by one task at a time
(aioftp cannot run two transfers on one client: issues #75, #157); the per-host limit
is the pool of these. We use aioftp for the control channel (connect, AUTH TLS, login,
replies) and open data connections ourselves, because the transfer path matters for
speed: one `TYPE I` at login instead of one per file, a 1 MiB stream buffer read in
large blocks, and active mode (PORT/EPRT), which aioftp's client lacks.

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
import ssl
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Literal

import aioftp
from aioftp.common import SSLSessionBoundContext

from engine.errors import AuthError, ConnectionLimitError, PermanentError, TransientError, XferError
from engine.protocols.ftp_listing import ListingError, RemoteEntry, parse_list_line, parse_mdtm, parse_mlsd_line
from engine.urls import Url

#: Bytes asked for per read of a data connection (aioftp's default is 8 KiB).
BLOCK_SIZE = 256 * 1024
#: StreamReader buffer for data connections; asyncio pauses reading at twice this.
_DATA_BUFFER = 1024 * 1024
#: Commands whose argument is a credential: never shown in messages.
_SECRET_VERBS = frozenset({"USER", "PASS", "ACCT"})

TlsMode = Literal["none", "explicit", "implicit"]


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
        self.identity = ("ftp", url.endpoint, url.user or "anonymous", settings)

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
    return any(all(m == c or not m.isdigit() for m, c in zip(mask, code)) for mask in masks)


def _reply_text(info: list[str] | str) -> str:
    lines = [info] if isinstance(info, str) else info
    return " ".join(line.strip(" -") for line in lines if line.strip(" -"))


class FtpConnection:
    """A logged-in session: listing, retrieving, storing, renaming."""

    def __init__(self, client: aioftp.Client, url: Url, settings: FtpSettings) -> None:
        self.client = client
        self.url = url
        self.settings = settings
        self._secret = url.secret()
        self._broken = False
        self._logged_in = False
        self._use_epsv = True
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

    @contextlib.contextmanager
    def _guard(self, command: str) -> Iterator[None]:
        """Translate whatever the library raises during `command` into xfer errors."""
        shown = self._shown(command)
        where = f"{self.url.endpoint}: {shown}"
        try:
            yield
        except aioftp.StatusCodeError as exc:
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
        except ssl.SSLCertVerificationError as exc:
            self._broken = True
            hint = "give the server's CA as ca_file, or set tls_verify: false in its host block"
            raise PermanentError(f"{where}: TLS certificate verification failed: {exc.verify_message}; {hint}") from None
        except ssl.SSLError as exc:
            self._broken = True
            raise TransientError(f"{where}: TLS error: {exc.reason or exc}") from None
        except TimeoutError:
            self._broken = True
            raise TimeoutError(f"{where}: no answer within {self.settings.timeout:g}s") from None
        except (ConnectionError, EOFError, asyncio.IncompleteReadError) as exc:
            self._broken = True
            raise TransientError(f"{where}: connection lost ({type(exc).__name__})") from None
        except OSError as exc:
            self._broken = True
            raise TransientError(f"{where}: {exc.strerror or type(exc).__name__}") from None
        except aioftp.AIOFTPException as exc:
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
        ssl_object = self.client.stream.writer.transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return None
        return SSLSessionBoundContext(ssl.PROTOCOL_TLS_CLIENT, context=ssl_object.context, session=ssl_object.session)

    async def _passive(self, ahead: str | None) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, Reply | None]:
        """A passive data connection; `ahead` (a command, or None) goes out in the same
        write as EPSV/PASV, its reply is returned as it came."""
        port = None
        early = None
        if self._use_epsv:
            try:
                if ahead is None:
                    _, info = await self._exchange("EPSV", "229")
                else:
                    early, (_, info) = await self._pair(ahead, "EPSV", "229")
                port = self.client.parse_epsv_response(info[-1])[1]
            except PermanentError:
                self._use_epsv = False  # 5xx: an old server; PASV from now on
        if port is None:
            if ahead is None or early is not None:
                _, info = await self._exchange("PASV", "227")
            else:
                early, (_, info) = await self._pair(ahead, "PASV", "227")
            # The address in the reply is ignored: a server must not point us elsewhere.
            port = self.client.parse_pasv_response(info[-1])[1]
        with self._guard("data connection"):
            reader, writer = await asyncio.open_connection(self.url.host, port, limit=_DATA_BUFFER)
        return reader, writer, early

    async def _secure(self, writer: asyncio.StreamWriter) -> None:
        """TLS on the data channel once the server has accepted the command: servers
        such as vsftpd start the handshake only then. The client is the TLS client in
        both passive and active mode (RFC 4217)."""
        context = self._data_ssl()
        if context is None:
            return
        with self._guard("data connection TLS"):
            async with asyncio.timeout(self.settings.timeout):
                await writer.start_tls(context, server_hostname=self.url.host)

    async def _listen(self) -> tuple[asyncio.Server, asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]:
        """Active mode: listen on the control connection's local address, tell the server."""
        local = self.client.stream.writer.get_extra_info("sockname")[0]
        peer = self.client.stream.writer.get_extra_info("peername")[0]
        accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
            asyncio.get_running_loop().create_future()
        )

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if accepted.done() or writer.get_extra_info("peername")[0] != peer:
                writer.close()  # not the server's data connection
                return
            accepted.set_result((reader, writer))

        with self._guard("data listener"):
            server = await asyncio.start_server(on_connect, host=local, port=0, limit=_DATA_BUFFER)
        port = server.sockets[0].getsockname()[1]
        try:
            family = 2 if ipaddress.ip_address(local).version == 6 else 1
            try:
                await self._command(f"EPRT |{family}|{local}|{port}|", "200")
            except PermanentError:
                if family == 2:
                    raise
                await self._command(f"PORT {local.replace('.', ',')},{port >> 8},{port & 0xFF}", "200")
        except BaseException:
            server.close()
            raise
        return server, accepted

    async def _accept(
        self, server: asyncio.Server, accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]]
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        try:
            with self._guard("data connection"):
                async with asyncio.timeout(self.settings.timeout):
                    return await accepted
        finally:
            server.close()

    @contextlib.asynccontextmanager
    async def _data(
        self, command: str, offset: int = 0, ahead: str | None = None
    ) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter, Reply | None]]:
        """Open a data connection, send `command` (after `REST offset`), yield the
        stream, then close it and read the final reply. `ahead`: a command whose reply
        is yielded too, pipelined with the data connection's setup in passive mode.

        A refusal of the command itself (550, 450...) leaves the session usable; any
        failure once the transfer has started leaves the control channel out of step
        (a 426 may still come), so the session is marked broken and the pool replaces it."""
        listener = None
        writer = None
        started = False
        try:
            # One timeout for the whole setup (each step used to have its own).
            with self._guard(command):
                async with asyncio.timeout(self.settings.timeout):
                    if self.settings.passive:
                        reader, writer, early = await self._passive(ahead)
                    else:
                        early = None if ahead is None else await self._exchange(ahead, ())
                        listener = await self._listen()
                    if offset:
                        await self._exchange(f"REST {offset}", "350")
                    await self._exchange(command, "1xx")
                    started = True
                    if listener is not None:
                        reader, writer = await self._accept(*listener)
                        listener = None
                    await self._secure(writer)
            yield reader, writer, early
        except BaseException as exc:
            if started or not isinstance(exc, XferError):
                self._broken = True
            raise
        finally:
            if listener is not None:
                listener[0].close()
            if writer is not None:
                writer.close()
        with self._guard(command):
            async with asyncio.timeout(self.settings.timeout):
                with contextlib.suppress(ConnectionError, ssl.SSLError):
                    await writer.wait_closed()
                await self._exchange(None, "2xx", "1xx")

    async def _read(self, reader: asyncio.StreamReader, command: str) -> bytes:
        with self._guard(command):
            async with asyncio.timeout(self.settings.timeout):
                return await reader.read(BLOCK_SIZE)

    # -- operations --------------------------------------------------------------

    async def list_dir(self, path: str) -> Listing:
        """Entries of directory `path` (absolute), by MLSD when offered, else LIST.

        The directory is entered with CWD and listed without an argument, so no
        server globbing (vsftpd expands `*` in LIST arguments) or option parsing
        (names starting with `-`) can change what is listed."""
        await self.change_dir(path)
        mlsd = self.has_mlsd
        command = "MLSD" if mlsd else "LIST"
        chunks = []
        async with self._data(command) as (reader, _, _):
            while block := await self._read(reader, command):
                chunks.append(block)
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
        self, path: str, offset: int = 0, on_mtime: Callable[[datetime | None], None] | None = None
    ) -> AsyncIterator[bytes]:
        """The bytes of remote `path` from `offset` (REST), in large blocks.

        `on_mtime`, if given, is called before the first block with the exact time
        (MDTM; None when the server cannot say), asked in the same write as EPSV: no
        round trip of its own. Use with `contextlib.aclosing`; stopping early breaks
        the session (the pool replaces it) rather than leaving a transfer half-read."""
        command = f"RETR {path}"
        ahead = f"MDTM {path}" if on_mtime is not None and self.has_mdtm else None
        async with self._data(command, offset, ahead) as (reader, _, early):
            if on_mtime is not None:
                on_mtime(_mdtm_time(early))
            while block := await self._read(reader, command):
                yield block

    async def store(self, path: str, blocks: AsyncIterable[bytes]) -> int:
        """Upload `blocks` as remote `path` (STOR); returns bytes sent."""
        command = f"STOR {path}"
        sent = 0
        async with self._data(command) as (_, writer, _):
            async for block in blocks:
                writer.write(block)
                with self._guard(command):
                    async with asyncio.timeout(self.settings.timeout):
                        await writer.drain()
                sent += len(block)
            if writer.can_write_eof():
                writer.write_eof()
        return sent

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
