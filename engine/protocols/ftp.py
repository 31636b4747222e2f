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
from collections.abc import AsyncIterable, AsyncIterator, Iterator
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
        with self._guard(line or "reply"):
            return await self.client.command(line, expected, wait)

    # -- data connections ------------------------------------------------------

    def _data_ssl(self) -> ssl.SSLContext | None:
        """The control channel's TLS context bound to its session (servers may require
        the data channel to resume it)."""
        ssl_object = self.client.stream.writer.transport.get_extra_info("ssl_object")
        if ssl_object is None:
            return None
        return SSLSessionBoundContext(ssl.PROTOCOL_TLS_CLIENT, context=ssl_object.context, session=ssl_object.session)

    async def _passive(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        port = None
        if self._use_epsv:
            try:
                _, info = await self._command("EPSV", "229")
                port = self.client.parse_epsv_response(info[-1])[1]
            except PermanentError:
                self._use_epsv = False  # 5xx: an old server; PASV from now on
        if port is None:
            _, info = await self._command("PASV", "227")
            # The address in the reply is ignored: a server must not point us elsewhere.
            port = self.client.parse_pasv_response(info[-1])[1]
        with self._guard("data connection"):
            async with asyncio.timeout(self.settings.timeout):
                return await asyncio.open_connection(self.url.host, port, limit=_DATA_BUFFER)

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
    async def _data(self, command: str, offset: int = 0) -> AsyncIterator[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
        """Open a data connection, send `command` (after `REST offset`), yield the
        stream, then close it and read the final reply.

        A refusal of the command itself (550, 450...) leaves the session usable; any
        failure once the transfer has started leaves the control channel out of step
        (a 426 may still come), so the session is marked broken and the pool replaces it."""
        listener = None
        writer = None
        started = False
        if self.settings.passive:
            reader, writer = await self._passive()
        else:
            listener = await self._listen()
        try:
            if offset:
                await self._command(f"REST {offset}", "350")
            await self._command(command, "1xx")
            started = True
            if listener is not None:
                reader, writer = await self._accept(*listener)
                listener = None
            await self._secure(writer)
            yield reader, writer
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
            with contextlib.suppress(ConnectionError, ssl.SSLError):
                async with asyncio.timeout(self.settings.timeout):
                    await writer.wait_closed()
        await self._command(None, "2xx", "1xx")

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
        async with self._data(command) as (reader, _):
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
            _, info = await self._command(f"MDTM {path}", "213")
            return parse_mdtm(info[-1])
        except (PermanentError, ListingError):
            return None

    async def retrieve(self, path: str, offset: int = 0) -> AsyncIterator[bytes]:
        """The bytes of remote `path` from `offset` (REST), in large blocks.

        Use with `contextlib.aclosing`; stopping early breaks the session (the pool
        replaces it) rather than leaving a transfer half-read."""
        command = f"RETR {path}"
        async with self._data(command, offset) as (reader, _):
            while block := await self._read(reader, command):
                yield block

    async def store(self, path: str, blocks: AsyncIterable[bytes]) -> int:
        """Upload `blocks` as remote `path` (STOR); returns bytes sent."""
        command = f"STOR {path}"
        sent = 0
        async with self._data(command) as (_, writer):
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
