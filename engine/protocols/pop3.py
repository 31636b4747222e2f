"""POP3 over the standard library's poplib, run in the session's own thread.

A POP3 session sees the maildrop as it was at login, so every `find` after the first
starts a new session; `delete` ends its session with QUIT, which is what commits
DELE. poplib hands back a message as lines without their CRLF (and without the final
one): `find` joins them back into the bytes the server holds."""

from __future__ import annotations

import contextlib
import poplib
import socket
from collections.abc import Callable, Collection, Hashable
from concurrent.futures import ThreadPoolExecutor
from email.parser import BytesHeaderParser
from typing import TYPE_CHECKING

from xfer.errors import AuthError, PermanentError, TransientError
from xfer.protocols._threaded import ThreadedSession, WatchedSockets, open_session, socket_error
from xfer.protocols._tls import check_credentials_socket, client_context
from xfer.urls import Url

if TYPE_CHECKING:
    from xfer.connect_ahead import AheadSocket
    from xfer.spec import HostConfig

#: Response codes (RFC 3206) that mean "try again later", not "wrong password".
_TEMPORARY = (b"[SYS/TEMP]", b"[IN-USE]", b"[LOGIN-DELAY]")

DEFAULT_TIMEOUT = 60.0


def _reply(exc: poplib.error_proto) -> bytes:
    raw = exc.args[0] if exc.args else b""
    return raw if isinstance(raw, bytes) else str(raw).encode()


def translate(exc: BaseException, where: str, *, login: bool = False) -> BaseException:
    """poplib's error_proto as AuthError (refused login), TransientError (RFC 3206
    temporary codes) or PermanentError; socket errors as transient."""
    if isinstance(exc, poplib.error_proto):
        reply = _reply(exc)
        text = f"{where}: {reply.decode('utf-8', 'replace').strip()}"
        error = TransientError(text) if any(code in reply for code in _TEMPORARY) else (
            AuthError(text) if login else PermanentError(text)
        )
        error.reply = "-ERR"  # type: ignore[attr-defined]  (see imap.reply_of)
        return error
    return socket_error(exc, where)


class _Pop3(WatchedSockets, poplib.POP3):
    """poplib.POP3 whose connect can be broken off (see `_threaded`)."""


class _Pop3Ahead(_Pop3):
    """`_Pop3` that connects with the socket connected ahead that its pool gave the
    session, if any (`engine/connect_ahead.py`)."""

    takes_ahead = True


class _Pop3Tls(WatchedSockets, poplib.POP3_SSL):
    """poplib.POP3_SSL whose connect can be broken off (see `_threaded`)."""


class Pop3Connection(ThreadedSession):
    """A logged-in POP3 session that opens a new one whenever it needs a fresh view."""

    def __init__(
        self, open_client: Callable[[], poplib.POP3], client: poplib.POP3, executor: ThreadPoolExecutor, where: str
    ) -> None:
        super().__init__(where, executor)
        self._open = open_client
        self.client = client
        self._stale = False  # True once this session listed the maildrop

    def _socket(self) -> socket.socket | None:
        return self.client.sock

    def _logout(self) -> None:
        self.client.quit()

    def _translate(self, exc: BaseException) -> BaseException:
        return translate(exc, self.where)

    def _fresh(self) -> poplib.POP3:
        if self._stale:
            with contextlib.suppress(poplib.error_proto, OSError):
                self.client.quit()
            self.client = self._open()
        self._stale = True
        return self.client

    async def find(self, header: str, needle: str, seen: Collection[str]) -> list[tuple[str, bytes | None]]:
        """Messages not in `seen` (by UIDL): (uid, full message) when `header` contains
        `needle`, (uid, None) for the others, so callers skip them next time."""
        return await self.call(self._find, header, needle, frozenset(seen))

    def _find(self, header: str, needle: str, seen: frozenset[str]) -> list[tuple[str, bytes | None]]:
        client = self._fresh()
        found: list[tuple[str, bytes | None]] = []
        for number, uid in self._listing(client):
            if uid in seen:
                continue
            _, lines, _ = client.top(number, 0)
            head = BytesHeaderParser().parsebytes(b"\r\n".join(lines) + b"\r\n")
            if any(needle in str(value) for value in head.get_all(header, [])):
                _, lines, _ = client.retr(number)
                found.append((uid, b"\r\n".join(lines) + b"\r\n"))
            else:
                found.append((uid, None))
        return found

    @staticmethod
    def _listing(client: poplib.POP3) -> list[tuple[int, str]]:
        _, lines, _ = client.uidl()
        pairs = (line.decode("ascii", "replace").split() for line in lines)
        return [(int(parts[0]), parts[1]) for parts in pairs if len(parts) == 2]

    async def inventory(self) -> list[tuple[int, str, int]]:
        """(number, UIDL, size) of every message, from a fresh session; `headers` and
        `retrieve` then use these numbers on that same session."""
        return await self.call(self._inventory)

    def _inventory(self) -> list[tuple[int, str, int]]:
        client = self._fresh()
        _, lines, _ = client.list()
        sizes = {}
        for line in lines:
            parts = line.split()
            if len(parts) == 2:
                sizes[int(parts[0])] = int(parts[1])
        return [(number, uid, sizes.get(number, 0)) for number, uid in self._listing(client)]

    async def headers(self, number: int) -> bytes:
        """The header block of message `number` (TOP n 0) in the current session."""
        return await self.call(self._headers, number)

    def _headers(self, number: int) -> bytes:
        _, lines, _ = self.client.top(number, 0)
        return b"\r\n".join(lines) + b"\r\n"

    async def retrieve(self, numbers: Collection[int]) -> list[bytes]:
        """Whole messages (RETR) by number in the current session, in the given order."""
        return await self.call(self._retrieve, list(numbers))

    def _retrieve(self, numbers: list[int]) -> list[bytes]:
        out = []
        for number in numbers:
            _, lines, _ = self.client.retr(number)
            out.append(b"\r\n".join(lines) + b"\r\n")
        return out

    async def stat(self) -> tuple[int, int]:
        """(messages, octets) of the maildrop as this session sees it (STAT)."""
        return await self.call(self.client.stat)  # type: ignore[arg-type]

    async def sizes(self) -> dict[int, int]:
        """{number: octets} of every message in this session (LIST)."""
        return await self.call(self._sizes)

    def _sizes(self) -> dict[int, int]:
        _, lines, _ = self.client.list()
        pairs = (line.split() for line in lines)
        return {int(parts[0]): int(parts[1]) for parts in pairs if len(parts) == 2}

    async def mark_deleted(self, number: int) -> None:
        """DELE `number` in this session: the server removes it at QUIT."""
        await self.call(self.client.dele, number)

    async def retrieve_in_chunks(self, number: int, write: Callable[[bytes], None], chunk: int) -> None:
        """One message (RETR) handed to `write` about `chunk` bytes at a time (in the
        session's thread): never whole in memory, for messages too large to hold.

        poplib's `retr` collects every line of a message in a list, so this reads the
        reply with the same private helpers it uses (`_putcmd`, `_getresp`, `_getline`:
        unchanged since Python 2) and hands the lines on in blocks."""
        await self.call(self._retrieve_in_chunks, number, write, chunk)

    def _retrieve_in_chunks(self, number: int, write: Callable[[bytes], None], chunk: int) -> None:
        client = self.client
        client._putcmd(f"RETR {number}")  # type: ignore[attr-defined]
        client._getresp()  # type: ignore[attr-defined]
        block: list[bytes] = []
        held = 0
        while True:
            line, _ = client._getline()  # type: ignore[attr-defined]
            if line == b".":
                break
            if line.startswith(b".."):
                line = line[1:]  # dot-stuffing undone, as retr() does
            block.append(line)
            held += len(line) + 2
            if held >= chunk:
                write(b"\r\n".join(block) + b"\r\n")
                block, held = [], 0
        if block:
            write(b"\r\n".join(block) + b"\r\n")

    async def delete(self, uids: Collection[str]) -> int:
        """Delete exactly these messages (by UIDL) and commit with QUIT; returns how many."""
        return await self.call(self._delete, frozenset(uids))

    def _delete(self, uids: frozenset[str]) -> int:
        client = self._fresh()
        deleted = 0
        for number, uid in self._listing(client):
            if uid in uids:
                client.dele(number)
                deleted += 1
        client.quit()  # commits; the next call opens a new session
        return deleted


class Pop3Connector:
    """Opens POP3 sessions: `pop3s://` implicit TLS, STLS when asked or offered."""

    def __init__(
        self, url: Url, host: HostConfig, *, starttls: bool | None = None, timeout: float = DEFAULT_TIMEOUT,
        ahead: bool = False,
    ):
        """ahead=True: a socket `xfer run` connected ahead may serve (mail.fetch)."""
        if url.tls and starttls:
            raise ValueError("pop3s:// is already TLS: starttls must be auto or false")
        self.url = url
        self.host = host
        self.starttls = starttls
        self.timeout = timeout
        self.ahead = ahead
        self.endpoint = url.endpoint
        self.identity: Hashable = ("pop3", url.scheme, url.endpoint, url.login, starttls, host.tls_verify, host.ca_file)
        self.where = f"pop3 {url.endpoint}"

    def __repr__(self) -> str:
        return f"<Pop3Connector {self.url}>"

    async def connect(self, ahead: AheadSocket | None = None) -> Pop3Connection:
        """`ahead`: a socket connected ahead that its pool gives this session (`ahead=True` only)."""
        client, executor = await open_session(
            self.open, self.where, lambda exc: translate(exc, self.where), poplib.POP3.close, ahead
        )
        return Pop3Connection(self.open, client, executor, self.where)

    def open(self) -> poplib.POP3:
        """Connect, secure and log in (blocking; runs in a thread)."""
        url = self.url
        if url.tls:
            client: poplib.POP3 = _Pop3Tls(
                url.host, url.port, timeout=self.timeout, context=client_context(self.host)
            )
        else:
            client = (_Pop3Ahead if self.ahead else _Pop3)(url.host, url.port, timeout=self.timeout)
        try:
            if not url.tls and self.starttls is not False:
                self._starttls(client)
            check_credentials_socket(client.sock, self.host, self.where, "pop3s")
            try:
                client.user(url.user or "")
                client.pass_(url.secret())
            except poplib.error_proto as exc:
                raise translate(exc, self.where, login=True) from None
        except BaseException:
            client.close()
            raise
        return client

    def _starttls(self, client: poplib.POP3) -> None:
        """The TLS context is built only when STLS is used: loading the CA store costs ~10 ms."""
        try:
            offered = "STLS" in client.capa()
        except poplib.error_proto:
            offered = False
        if offered or self.starttls:
            if not offered:
                raise PermanentError(f"{self.where}: server does not offer STLS (starttls: true)")
            client.stls(client_context(self.host))

