"""Sockets connected while `xfer run` is still starting, for the first mail sessions.

A forking IMAP or POP3 server (Dovecot) starts a login process for every connection:
10-50 ms before its greeting, more when a run opens eight at once, and the server's
side of it all happens while xfer itself spends ~100 ms importing its engine and
forking. So `xfer run` connects the first sessions of its `mail.fetch` jobs right
after reading the job file, before those imports (`open_for`: non-blocking connects,
nothing waits for them).

Never more sockets than the run would open anyway: per address, its mail.fetch jobs,
at most its host limit, all within the run's global bound. A forked run deals them out
to its processes (`deal`, `keep`), at most a process's share of the host each. Once
the scheduler runs, the host's pool adopts them (`hand_over`, `pool.HostPool.adopt`):
each is then an open connection like an idle one, holding its host slot, a global
slot and (forked) a lease on the host, so every bound counts it, and it is closed to
make room as an idle connection would be. A mail.fetch session takes one from its
pool instead of connecting, and finds the greeting waiting in it (`usable`). What is
left after `FRESH` seconds is closed: by then the run has had its first sessions, and
a server may give up on a silent client. A connect that failed is closed and the
session connects as usual, so errors read as they always did. Implicit TLS (imaps://,
pop3s://) is never connected ahead: its handshake belongs to the session's thread."""

from __future__ import annotations

import errno
import select
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from xfer.urls import Url

#: Kinds whose first connection goes to this spec field's URL, by a connector that
#: lets its client take a socket connected ahead (`ImapConnector(ahead=True)`, the same
#: for POP3; a load test never does: it times the connect).
FIRST_CONNECTION = {"mail.fetch": "source"}
SCHEMES = frozenset({"imap", "pop3"})
#: Seconds a socket connected ahead waits to be taken before it is closed.
FRESH = 2.0

Address = tuple[str, int]


class AheadSocket:
    """A socket connected ahead, as its host's pool holds it: an open connection (the
    pool's `Connection`) that no session has logged in over yet."""

    __slots__ = ("sock", "opened")

    def __init__(self, sock: socket.socket, opened: float) -> None:
        self.sock, self.opened = sock, opened

    def is_usable(self) -> bool:
        return time.monotonic() - self.opened < FRESH

    async def close(self) -> None:
        self.sock.close()


_ready: dict[Address, deque[AheadSocket]] = {}
#: Per process of a forked run (`deal`): the sockets it keeps (`keep`).
_dealt: list[dict[Address, deque[AheadSocket]]] = []


def first_url(spec: Any) -> Url | None:
    """Where a job's first session connects, when a socket connected ahead may serve it."""
    field = FIRST_CONNECTION.get(spec.kind)
    url = getattr(spec, field) if field else None
    return url if url is not None and url.scheme in SCHEMES else None


def wanted(
    jobs: Iterable[tuple[Any, Any]], max_open: int | None, sharing: Callable[[str], int] = lambda endpoint: 1,
) -> Counter[Address]:
    """Sockets worth connecting ahead for (job file, spec) pairs: per address, one a
    job, at most the host's limit (divided by the processes `sharing` its endpoint),
    and at most `max_open` in all."""
    count: Counter[Address] = Counter()
    limits: dict[Address, int] = {}
    for file, spec in jobs:
        url = first_url(spec)
        if url is None:
            continue
        address = (url.host, url.port)
        count[address] += 1
        limits[address] = max(1, file.host_limit(url) // sharing(url.endpoint))
    left = max_open if max_open is not None else sum(count.values())
    for address in count:
        count[address] = min(count[address], limits[address], left)
        left -= count[address]
    return +count


def open_for(addresses: Counter[Address]) -> None:
    """Start connecting `addresses` (how many sockets each); returns at once. An
    address that does not resolve or connect right away is left to the sessions."""
    for (host, port), count in addresses.items():
        try:
            family, kind, proto, _, target = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        except OSError:
            continue
        for _ in range(count):
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            if sock.connect_ex(target) not in (0, errno.EINPROGRESS):
                sock.close()
                break
            _ready.setdefault((host, port), deque()).append(AheadSocket(sock, time.monotonic()))


def deal(shares: list[Counter[Address]]) -> None:
    """Before a forked run's processes start: process i is to keep `shares[i]` of
    the sockets (`keep`); sockets no process gets are closed."""
    _dealt[:] = [{} for _ in shares]
    for address, sockets in _ready.items():
        for mine, share in zip(_dealt, shares):
            for _ in range(min(share[address], len(sockets))):
                mine.setdefault(address, deque()).append(sockets.popleft())
    _close(_ready)


def keep(index: int) -> None:
    """In forked process `index`: keep its dealt sockets, close its copies of the others'."""
    _ready.update(_dealt.pop(index) if index < len(_dealt) else {})
    for others in _dealt:
        _close(others)
    _dealt.clear()


def hand_over() -> dict[Address, deque[AheadSocket]]:
    """Every socket kept, for the pools to adopt (this module holds none after)."""
    handed = dict(_ready)
    _ready.clear()
    return handed


def usable(ahead: AheadSocket, timeout: float | None) -> socket.socket | None:
    """In the session's thread: the socket, once its connect has succeeded (waiting
    up to `timeout`), unless it is older than `FRESH`; else None (closed): connect as usual."""
    sock = ahead.sock
    if ahead.is_usable() and _connected(sock, timeout):
        sock.settimeout(timeout)
        return sock
    sock.close()
    return None


def _connected(sock: socket.socket, timeout: float | None) -> bool:
    """Whether a non-blocking connect has succeeded (waiting for it up to `timeout`)."""
    poll = select.poll()
    poll.register(sock, select.POLLOUT)
    try:
        ready = poll.poll(None if timeout is None else timeout * 1000)
        return bool(ready) and sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
    except OSError:
        return False


def close_all() -> None:
    """Close every socket not handed over (in a forked run's parent: its copies only)."""
    _close(_ready)
    for dealt in _dealt:
        _close(dealt)


def _close(table: dict[Address, deque[AheadSocket]]) -> None:
    while table:
        _, sockets = table.popitem()
        for ahead in sockets:
            ahead.sock.close()
