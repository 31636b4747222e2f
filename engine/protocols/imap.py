"""IMAP over the standard library's imaplib, run in an executor.

The URL path names the mailbox (`imap://user@host/INBOX`, INBOX by default). `find`
asks the server to search a header (UID SEARCH HEADER), so a busy mailbox is not
downloaded; `delete` flags exactly the given UIDs and expunges only them (UID EXPUNGE,
RFC 4315), so messages someone else marked \\Deleted stay where they are."""

from __future__ import annotations

import imaplib
import re
import socket
import ssl
from collections.abc import Collection, Hashable

from engine.errors import AuthError, PermanentError, TransientError
from engine.mail.blocking import BlockingSession, run_blocking, socket_error
from engine.mail.tls import client_context
from engine.spec import HostConfig
from engine.urls import Url

DEFAULT_TIMEOUT = 60.0
#: Response codes (RFC 5530) that mean "try again later", not "wrong password".
_TEMPORARY = ("[UNAVAILABLE]", "[INUSE]", "[LIMIT]")
_UID = re.compile(rb"\bUID (\d+)")


def translate(exc: BaseException, where: str, *, login: bool = False) -> BaseException:
    """imaplib errors as engine errors: `abort` (connection trouble) and RFC 5530
    temporary codes are transient, a refused login is AuthError, other NO/BAD permanent."""
    if isinstance(exc, imaplib.IMAP4.abort):
        return TransientError(f"{where}: {exc}")
    if isinstance(exc, imaplib.IMAP4.error):
        text = f"{where}: {exc}"
        if any(code in str(exc) for code in _TEMPORARY):
            return TransientError(text)
        return AuthError(text) if login else PermanentError(text)
    return socket_error(exc, where)


def _check(typ: str, data: list[object], what: str) -> list[object]:
    if typ != "OK":
        detail = b" ".join(item for item in data if isinstance(item, bytes)).decode("utf-8", "replace")
        raise imaplib.IMAP4.error(f"{what} failed: {typ} {detail}".strip())
    return data


class ImapConnection(BlockingSession):
    """A logged-in IMAP session with its mailbox selected."""

    def __init__(self, client: imaplib.IMAP4, mailbox: str, where: str) -> None:
        super().__init__(where)
        self.client = client
        self.mailbox = mailbox

    def _socket(self) -> socket.socket | None:
        return getattr(self.client, "sock", None)

    def _logout(self) -> None:
        self.client.logout()

    def _translate(self, exc: BaseException) -> BaseException:
        return translate(exc, self.where)

    async def find(self, header: str, needle: str, seen: Collection[str]) -> list[tuple[str, bytes | None]]:
        """Messages not in `seen` whose `header` contains `needle`: (uid, full message)."""
        return await self.call(self._find, header, needle, frozenset(seen))

    def _find(self, header: str, needle: str, seen: frozenset[str]) -> list[tuple[str, bytes | None]]:
        client = self.client
        _check(*client.noop(), "NOOP")  # lets the server report newly delivered mail
        data = _check(*client.uid("SEARCH", None, "HEADER", header, _quote(needle)), "SEARCH")
        uids = [uid.decode() for uid in (data[0] or b"").split()]  # type: ignore[union-attr]
        found: list[tuple[str, bytes | None]] = []
        for uid in uids:
            if uid in seen:
                continue
            parts = _check(*client.uid("FETCH", uid, "(UID BODY.PEEK[])"), "FETCH")
            raw = next((item[1] for item in parts if isinstance(item, tuple) and _UID.search(item[0])), None)
            found.append((uid, raw))
        return found

    async def delete(self, uids: Collection[str]) -> int:
        """Flag exactly these UIDs \\Deleted and expunge only them; returns how many."""
        return await self.call(self._delete, sorted(uids, key=int))

    def _delete(self, uids: list[str]) -> int:
        if not uids:
            return 0
        client = self.client
        if "UIDPLUS" not in client.capabilities:
            raise PermanentError(f"{self.where}: server lacks UIDPLUS; a plain EXPUNGE could remove other mail")
        uid_set = ",".join(uids)
        _check(*client.uid("STORE", uid_set, "+FLAGS.SILENT", r"(\Deleted)"), "STORE")
        _check(*client.uid("EXPUNGE", uid_set), "UID EXPUNGE")
        return len(uids)


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapConnector:
    """Opens IMAP sessions: `imaps://` implicit TLS, STARTTLS when asked or offered."""

    def __init__(self, url: Url, host: HostConfig, *, starttls: bool | None = None, timeout: float = DEFAULT_TIMEOUT):
        if url.tls and starttls:
            raise ValueError("imaps:// is already TLS: starttls must be auto or false")
        self.url = url
        self.host = host
        self.starttls = starttls
        self.timeout = timeout
        self.mailbox = url.path.strip("/") or "INBOX"
        self.endpoint = url.endpoint
        self.identity: Hashable = (
            "imap", url.scheme, url.endpoint, url.user, self.mailbox, starttls, host.tls_verify, host.ca_file,
        )
        self.where = f"imap {url.endpoint}"

    def __repr__(self) -> str:
        return f"<ImapConnector {self.url}>"

    async def connect(self) -> ImapConnection:
        client = await run_blocking(self.open, translate=lambda exc: translate(exc, self.where))
        return ImapConnection(client, self.mailbox, self.where)

    def open(self) -> imaplib.IMAP4:
        """Connect, secure, log in and select the mailbox (blocking; runs in a thread)."""
        url, context = self.url, client_context(self.host)
        if url.tls:
            client: imaplib.IMAP4 = imaplib.IMAP4_SSL(url.host, url.port, ssl_context=context, timeout=self.timeout)
        else:
            client = imaplib.IMAP4(url.host, url.port, timeout=self.timeout)
        try:
            if not url.tls and self.starttls is not False:
                self._starttls(client, context)
            try:
                client.login(url.user or "", url.secret())
            except imaplib.IMAP4.error as exc:
                raise translate(exc, self.where, login=True) from None
            # Servers announce more after login (Dovecot: UIDPLUS); imaplib keeps the first list.
            data = _check(*client.capability(), "CAPABILITY")
            client.capabilities = tuple(data[-1].decode("ascii", "replace").upper().split())  # type: ignore[union-attr]
            _check(*client.select(_quote(self.mailbox)), f"SELECT {self.mailbox}")
        except BaseException:
            client.shutdown()
            raise
        return client

    def _starttls(self, client: imaplib.IMAP4, context: ssl.SSLContext) -> None:
        offered = "STARTTLS" in client.capabilities
        if offered or self.starttls:
            if not offered:
                raise PermanentError(f"{self.where}: server does not offer STARTTLS (starttls: true)")
            client.starttls(ssl_context=context)
