"""IMAP over the standard library's imaplib, run in the session's own thread.

The URL path names the mailbox (`imap://user@host/INBOX`, INBOX by default). `find`
asks the server to search a header (UID SEARCH HEADER), so a busy mailbox is not
downloaded; `delete` flags exactly the given UIDs and expunges only them (UID EXPUNGE,
RFC 4315), so messages someone else marked \\Deleted stay where they are."""

from __future__ import annotations

import calendar
import functools
import imaplib
import re
import socket
from collections.abc import Callable, Collection, Hashable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import TYPE_CHECKING, NamedTuple, TypeVar

from xfer.errors import AuthError, PermanentError, TransientError
from xfer.protocols._threaded import ThreadedSession, WatchedSockets, open_session, socket_error
from xfer.protocols._tls import check_credentials_socket, client_context
from xfer.protocols.imap_fetch import (
    FetchParser, FetchResponse, MessageFetches, Unread, read_uid_fetch, send_uid_fetch, uid_fetch, uid_set,
)
from xfer.urls import Url

if TYPE_CHECKING:
    from xfer.connect_ahead import AheadSocket
    from xfer.spec import HostConfig

T = TypeVar("T")
DEFAULT_TIMEOUT = 60.0
#: Response codes (RFC 5530) that mean "try again later", not "wrong password".
_TEMPORARY = ("[UNAVAILABLE]", "[INUSE]", "[LIMIT]")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")
#: A size survey's response as servers (Dovecot, Cyrus...) send it, whole on one line.
_UID_SIZE_LINE = re.compile(rb"\* \d+ FETCH \(UID (\d+) RFC822\.SIZE (\d+)\)\r\n")
_INTERNALDATE = re.compile(
    rb'INTERNALDATE "([ 0-3][0-9])-([A-Z][a-z][a-z])-([0-9]{4}) ([0-9]{2}):([0-9]{2}):([0-9]{2}) ([-+])([0-9]{2})([0-9]{2})"'
)
_BAD = re.compile(r"(?:error|failed): BAD\b")
_LIST_LINE = re.compile(rb'^\((?P<flags>[^)]*)\) (?P<delimiter>"(?:[^"\\]|\\.)*"|NIL) (?P<name>.*)$')
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_MESSAGE_ITEMS = "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[])"
_MONTH_NUMBERS = {name.encode(): number for number, name in enumerate(_MONTHS, 1)}


class Folder(NamedTuple):
    """A mailbox from LIST: its name and hierarchy delimiter (None when flat)."""

    name: str
    delimiter: str | None


class Fetched(NamedTuple):
    """One message from UID FETCH: uid, the server's size, INTERNALDATE (epoch) and bytes
    (for a message streamed to disk: its header block, the rest being in `spool`)."""

    uid: int
    size: int
    received: float | None
    raw: bytes
    spool: str | None = None


def translate(exc: BaseException, where: str, *, login: bool = False) -> BaseException:
    """imaplib errors as engine errors: `abort` (connection trouble) and RFC 5530
    temporary codes are transient, a refused login is AuthError, other NO/BAD permanent.
    The server's reply (NO, BAD, BYE) rides on the error as `reply` (`reply_of`)."""
    if isinstance(exc, imaplib.IMAP4.abort):
        return _with_reply(TransientError(f"{where}: {exc}"), _abort_reply(str(exc)))
    if isinstance(exc, imaplib.IMAP4.error):
        text = f"{where}: {exc}"
        reply = "BAD" if _BAD.search(str(exc)) else "NO"
        if any(code in str(exc) for code in _TEMPORARY):
            return _with_reply(TransientError(text), reply)
        return _with_reply(AuthError(text) if login else PermanentError(text), reply)
    return socket_error(exc, where)


def _abort_reply(text: str) -> str | None:
    """imaplib raises `abort` with the server's BYE text, or with 'socket error: ...'
    (possibly after 'command: NAME => ') when the connection ended without a word."""
    return None if "socket error" in text else "BYE"


def _with_reply(error: BaseException, reply: str | None) -> BaseException:
    if reply is not None:
        error.reply = reply  # type: ignore[attr-defined]
    return error


def reply_of(exc: BaseException) -> str | None:
    """The server's refusal an IMAP or POP3 error carries (NO, BAD, BYE, -ERR); None
    when there was no reply (a reset, a timeout)."""
    return getattr(exc, "reply", None)


def _check(typ: str, data: list[object], what: str) -> list[object]:
    if typ != "OK":
        detail = b" ".join(item for item in data if isinstance(item, bytes)).decode("utf-8", "replace")
        raise imaplib.IMAP4.error(f"{what} failed: {typ} {detail}".strip())
    return data


def received_at(meta: bytes) -> float | None:
    """INTERNALDATE of a FETCH response as an epoch (what `imaplib.Internaldate2tuple`
    and `time.mktime` gave, without the round trip through local time)."""
    match = _INTERNALDATE.search(meta)
    if match is None:
        return None
    day, month, year, hour, minute, second, sign, zone_hours, zone_minutes = match.groups()
    days = _epoch_days(year, month, day)
    if days is None:
        return None
    zone = (int(zone_hours) * 60 + int(zone_minutes)) * 60
    utc = days * 86400 + int(hour) * 3600 + int(minute) * 60 + int(second)
    return float(utc - zone if sign == b"+" else utc + zone)


@functools.lru_cache(maxsize=1024)
def _epoch_days(year: bytes, month: bytes, day: bytes) -> int | None:
    """Days from 1970-01-01 to a date (cached: a mailbox's mail comes on few days)."""
    number = _MONTH_NUMBERS.get(month)
    try:
        return calendar.timegm((int(year), number, int(day), 0, 0, 0, 0, 0, 0)) // 86400 if number else None
    except ValueError:
        return None


class _Announced:
    """Mixin for imaplib clients: the capabilities a greeting announced in its
    `[CAPABILITY ...]` code (Dovecot's does) are taken as they are; imaplib asked
    again with a CAPABILITY command, a round trip of every login. After STARTTLS
    they are asked for again, as imaplib does: what came before TLS is not trusted."""

    untagged_responses: dict[str, list[bytes]]

    def _get_capabilities(self) -> None:
        announced = self.untagged_responses.pop("CAPABILITY", None)
        if announced and not hasattr(self, "capabilities"):  # the greeting's (imaplib sets them first here)
            self.capabilities = tuple(announced[-1].decode("ascii", "replace").upper().split())
            return
        super()._get_capabilities()  # type: ignore[misc]


class _Imap(WatchedSockets, Unread, _Announced, imaplib.IMAP4):
    """imaplib.IMAP4 whose connect can be broken off (see `_threaded`), whose FETCH
    replies `imap_fetch` may read, and which believes its greeting's capabilities."""


class _ImapAhead(_Imap):
    """`_Imap` that connects with the socket connected ahead that its pool gave the
    session, if any (`engine/connect_ahead.py`)."""

    takes_ahead = True


class _ImapTls(WatchedSockets, Unread, _Announced, imaplib.IMAP4_SSL):
    """imaplib.IMAP4_SSL whose connect can be broken off (see `_threaded`), whose
    FETCH replies `imap_fetch` may read, and which believes its greeting's capabilities."""


class ImapConnection(ThreadedSession):
    """A logged-in IMAP session with its mailbox selected."""

    def __init__(
        self, client: imaplib.IMAP4, executor: ThreadPoolExecutor, mailbox: str, where: str,
        uidvalidity: int | None = None,
    ) -> None:
        super().__init__(where, executor)
        self.client = client
        self.mailbox = mailbox
        #: UIDVALIDITY announced when the mailbox was last selected (constant per session).
        self.uidvalidity = uidvalidity
        self._messages = MessageFetches(client, _MESSAGE_ITEMS)
        #: Nothing ran since the connector's SELECT: the view is as fresh as a new one.
        self._just_selected = uidvalidity is not None

    async def call(self, function: Callable[..., T], *args: object) -> T:
        """Any command but the awaited message FETCH first reads off a FETCH sent
        ahead that was not wanted after all (imaplib would choke on its reply)."""
        self._just_selected = False
        if self._messages.in_flight and function != self._fetch_messages:
            return await super().call(self._settled, function, *args)
        return await super().call(function, *args)

    def _settled(self, function: Callable[..., T], *args: object) -> T:
        self._messages.settle()
        return function(*args)

    def _socket(self) -> socket.socket | None:
        return getattr(self.client, "sock", None)

    def _logout(self) -> None:
        self.client.logout()

    def _translate(self, exc: BaseException) -> BaseException:
        return translate(exc, self.where)

    def _breaks(self, exc: BaseException) -> bool:
        """imaplib's `abort` (BYE, a reply cut off or unreadable) leaves the reply
        stream at an unknown point, as a socket error does."""
        return isinstance(exc, imaplib.IMAP4.abort) or super()._breaks(exc)

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
            raw = next((response.body for response in self._fetch(uid, "(UID BODY.PEEK[])") if response.uid is not None), None)
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

    async def store_flags(self, uids: Collection[int], flag: str) -> None:
        """Add `flag` to these UIDs (UID STORE +FLAGS.SILENT)."""
        await self.call(self._store_flags, uid_set(uids), flag)

    def _store_flags(self, uid_text: str, flag: str) -> None:
        _check(*self.client.uid("STORE", uid_text, "+FLAGS.SILENT", f"({flag})"), "STORE")

    async def current_view(self) -> int:
        """UIDVALIDITY of a view of the mailbox no older than this call: SELECT again,
        unless the session was opened (and selected) just now and used for nothing."""
        if self._just_selected and self.uidvalidity is not None:
            self._just_selected = False
            return self.uidvalidity
        return await self.reselect()

    async def reselect(self) -> int:
        """SELECT the mailbox again (a fresh view of it); returns its UIDVALIDITY."""
        return await self.call(self._reselect)

    def _reselect(self) -> int:
        _check(*self.client.select(_quote(self.mailbox)), f"SELECT {self.mailbox}")
        validity = _uidvalidity(self.client)
        if validity is None:
            raise PermanentError(f"{self.where}: SELECT {self.mailbox} announced no UIDVALIDITY")
        self.uidvalidity = validity
        return validity

    async def search_uids(self, since: date | None = None) -> list[int]:
        """UIDs of all messages, or of those with an internal date on or after `since`."""
        criteria = ("SINCE", _imap_date(since)) if since else ("ALL",)
        return await self.call(self._search, criteria)

    def _search(self, criteria: tuple[str, ...]) -> list[int]:
        data = _check(*self.client.uid("SEARCH", None, *criteria), "SEARCH")
        return sorted(int(uid) for uid in (data[0] or b"").split())  # type: ignore[union-attr]

    async def sizes(self, uids: Collection[int]) -> dict[int, int]:
        """RFC822.SIZE of these UIDs, one command."""
        return await self.call(self._sizes, uid_set(uids))

    async def all_sizes(self) -> dict[int, int]:
        """RFC822.SIZE of every message by UID (`UID FETCH 1:*`): the UIDs and their
        sizes in one command, where a search and then the sizes take two."""
        return await self.call(self._sizes, "1:*")

    def _sizes(self, uid_text: str) -> dict[int, int]:
        if not uid_text:
            return {}
        tag = send_uid_fetch(self.client, uid_text, "(UID RFC822.SIZE)")
        parser = FetchParser(tag, _UID_SIZE_LINE)
        responses = read_uid_fetch(self.client, tag, parser)
        found = {int(uid): int(size) for uid, size in parser.matched}
        for response in responses:  # the items in another order, or more of them
            uid, size = response.uid, _SIZE.search(response.meta)
            if uid is not None and size:
                found[uid] = int(size.group(1))
        return found

    async def headers(self, uids: Collection[int]) -> dict[int, tuple[int, bytes]]:
        """(RFC822.SIZE, header block) of these UIDs, one command: enough to recognise
        messages again without downloading them."""
        return await self.call(self._headers, uid_set(uids))

    def _headers(self, uid_text: str) -> dict[int, tuple[int, bytes]]:
        if not uid_text:
            return {}
        found = {}
        for response in self._fetch(uid_text, "(UID RFC822.SIZE BODY.PEEK[HEADER])"):
            uid, size = response.uid, _SIZE.search(response.meta)
            if uid is not None and size and response.body is not None:
                found[uid] = (int(size.group(1)), response.body)
        return found

    async def fetch_messages(self, uids: Collection[int], then: Collection[int] = ()) -> list[Fetched]:
        """Whole messages by UID in one `UID FETCH` (several in flight), in UID order;
        BODY.PEEK leaves \\Seen alone. `then`: the UIDs likely wanted next, whose
        FETCH is sent at once, so the server works on it while this batch is stored
        (if the next call wants other UIDs, its reply is read off and dropped)."""
        return await self.call(self._fetch_messages, uids, then)

    def _fetch_messages(self, uids: Collection[int], then: Collection[int]) -> list[Fetched]:
        found = []
        for response in self._messages.fetch(uids, then):
            meta, literal, uid = response.meta, response.body, response.uid
            if uid is None or literal is None:
                continue
            size = _SIZE.search(meta)
            found.append(Fetched(uid, int(size.group(1)) if size else len(literal), received_at(meta), literal))
        return sorted(found)

    async def fetch_in_chunks(self, uid: int, write: Callable[[bytes], None], chunk: int) -> float | None:
        """One message by partial FETCHes (`BODY.PEEK[]<offset.chunk>`), each handed to
        `write` as it comes (in the session's thread): never whole in memory, for
        messages too large to hold. Returns its INTERNALDATE."""
        return await self.call(self._fetch_in_chunks, uid, write, chunk)

    def _fetch_in_chunks(self, uid: int, write: Callable[[bytes], None], chunk: int) -> float | None:
        received, offset = None, 0
        while True:
            items = f"(UID{' INTERNALDATE' if offset == 0 else ''} BODY.PEEK[]<{offset}.{chunk}>)"
            found = self._fetch(str(uid), items)
            meta, literal = next(((r.meta, r.body) for r in found if r.body is not None), (b"", None))
            if offset == 0:
                if literal is None:
                    raise PermanentError(f"UID {uid}: no such message (expunged meanwhile?)")
                received = received_at(meta)
            if not literal:
                return received  # past the end: an empty string, not a literal
            write(literal)
            offset += len(literal)
            if len(literal) < chunk:
                return received

    def _fetch(self, uid_text: str, items: str) -> list[FetchResponse]:
        """(metadata, body) per FETCH response, read in blocks (`imap_fetch`); the
        metadata is all the text outside the body, since servers may put UID after it."""
        return uid_fetch(self.client, uid_text, items)

    async def folders(self) -> list[Folder]:
        """Selectable mailboxes (LIST "" "*"), skipping \\Noselect and \\NonExistent."""
        return await self.call(self._folders)

    def _folders(self) -> list[Folder]:
        data = _check(*self.client.list('""', "*"), "LIST")
        found = []
        for item in data:
            line = item[0] + _quote(item[1].decode("utf-8", "replace")).encode() if isinstance(item, tuple) else item
            if not isinstance(line, bytes):
                continue
            folder = parse_list_line(line)
            if folder is not None:
                found.append(folder)
        return found


def parse_list_line(line: bytes) -> Folder | None:
    """One LIST response line as a Folder; None for unselectable or unparsable lines."""
    match = _LIST_LINE.match(line.strip())
    if match is None:
        return None
    flags = match.group("flags").lower().split()
    if b"\\noselect" in flags or b"\\nonexistent" in flags:
        return None
    delimiter = _unquote(match.group("delimiter"))
    name = _unquote(match.group("name"))
    return Folder(name, delimiter) if name else None


def _unquote(token: bytes) -> str | None:
    if token == b"NIL":
        return None
    text = token.decode("utf-8", "replace")
    if len(text) >= 2 and text[0] == text[-1] == '"':
        text = re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _imap_date(day: date) -> str:
    """RFC 3501 date (1-Feb-2024), with English month names whatever the locale."""
    return f"{day.day}-{_MONTHS[day.month - 1]}-{day.year}"


def _uidvalidity(client: imaplib.IMAP4) -> int | None:
    values = client.untagged_responses.get("UIDVALIDITY") or [None]
    try:
        return int(values[-1])  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapConnector:
    """Opens IMAP sessions: `imaps://` implicit TLS, STARTTLS when asked or offered."""

    def __init__(
        self, url: Url, host: HostConfig, *, starttls: bool | None = None, timeout: float = DEFAULT_TIMEOUT,
        select: bool = True, ahead: bool = False,
    ):
        """select=False: the session is left in the authenticated state (a load test
        times SELECT itself, `ImapConnection.reselect`). ahead=True: a socket `xfer
        run` connected ahead may serve (mail.fetch; never a load test, which times
        the connect)."""
        if url.tls and starttls:
            raise ValueError("imaps:// is already TLS: starttls must be auto or false")
        self.url = url
        self.host = host
        self.starttls = starttls
        self.timeout = timeout
        self.select = select
        self.ahead = ahead
        self.mailbox = url.path.strip("/") or "INBOX"
        self.endpoint = url.endpoint
        self.identity: Hashable = (
            "imap", url.scheme, url.endpoint, url.login, self.mailbox, starttls, host.tls_verify, host.ca_file, select,
        )
        self.where = f"imap {url.endpoint}"

    def __repr__(self) -> str:
        return f"<ImapConnector {self.url}>"

    async def connect(self, ahead: AheadSocket | None = None) -> ImapConnection:
        """`ahead`: a socket connected ahead that its pool gives this session (`ahead=True` only)."""
        client, executor = await open_session(
            self.open, self.where, lambda exc: translate(exc, self.where), imaplib.IMAP4.shutdown, ahead
        )
        return ImapConnection(client, executor, self.mailbox, self.where, _uidvalidity(client))

    def open(self) -> imaplib.IMAP4:
        """Connect, secure, log in and select the mailbox (blocking; runs in a thread)."""
        url = self.url
        if url.tls:
            client: imaplib.IMAP4 = _ImapTls(
                url.host, url.port, ssl_context=client_context(self.host), timeout=self.timeout
            )
        else:
            client = (_ImapAhead if self.ahead else _Imap)(url.host, url.port, timeout=self.timeout)
        try:
            if not url.tls and self.starttls is not False:
                self._starttls(client)
            check_credentials_socket(client.sock, self.host, self.where, "imaps")
            client.untagged_responses.pop("CAPABILITY", None)  # from before login
            try:
                client.login(url.user or "", url.secret())
            except imaplib.IMAP4.error as exc:
                raise translate(exc, self.where, login=True) from None
            # Servers announce more after login (Dovecot: UIDPLUS), most of them in the
            # LOGIN reply's CAPABILITY code (imaplib files it with the untagged
            # responses); imaplib keeps the first list.
            announced = client.untagged_responses.pop("CAPABILITY", None)
            words = announced[-1] if announced else _check(*client.capability(), "CAPABILITY")[-1]
            client.capabilities = tuple(words.decode("ascii", "replace").upper().split())  # type: ignore[union-attr]
            if self.select:
                _check(*client.select(_quote(self.mailbox)), f"SELECT {self.mailbox}")
        except BaseException:
            client.shutdown()
            raise
        return client

    def _starttls(self, client: imaplib.IMAP4) -> None:
        """The TLS context is built only when needed: loading the CA store costs ~10 ms."""
        offered = "STARTTLS" in client.capabilities
        if offered or self.starttls:
            if not offered:
                raise PermanentError(f"{self.where}: server does not offer STARTTLS (starttls: true)")
            client.starttls(ssl_context=client_context(self.host))
