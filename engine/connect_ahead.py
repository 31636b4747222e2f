"""Sockets connected while `xfer run` is still starting, for the first mail sessions.

A forking IMAP or POP3 server (Dovecot) starts a login process for every connection:
10-50 ms before its greeting, more when a run opens eight at once, and the server's
side of it all happens while xfer itself spends ~100 ms importing its engine and
forking. So `xfer run` connects the first sessions of its `mail.fetch` jobs right
after reading the job file, before those imports (`open_for`: non-blocking connects,
nothing waits for them). A session then takes such a socket (`take`) instead of
connecting, and finds the greeting waiting in it.

Never more sockets than the run would open anyway: per address, its mail.fetch jobs,
at most its host limit, all within the run's global bound. A forked run deals them out
to its processes (`deal`, `keep`), at most a process's share of the host each. Every
new session of that address takes one while any is left, so in one process the
sockets and the sessions of a host never exceed its limit. The pools do not count the
sockets not yet taken, though: while some wait (in the usual start, milliseconds; at
most `FRESH` seconds) another process may be given more of the host, or sessions of
other hosts may fill the global bound. What is left unused after `FRESH` seconds,
or when the run ends, is closed (`close_all`): by then the run has had its first
sessions, and a server may give up on a silent client. A connect that failed is
closed and the session connects as usual, so errors read as they always did.
Implicit TLS (imaps://, pop3s://) is never connected ahead: its handshake belongs to
the session's thread."""

from __future__ import annotations

import errno
import select
import socket
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable
from typing import Any

#: Kinds whose first connection goes to this spec field's URL, by a connector that
#: lets its client take a socket connected ahead (`ImapConnector(ahead=True)`, the same
#: for POP3; a load test never does: it times the connect).
FIRST_CONNECTION = {"mail.fetch": "source"}
SCHEMES = frozenset({"imap", "pop3"})
#: Seconds a socket connected ahead waits to be taken before it is closed.
FRESH = 2.0

Address = tuple[str, int]

_ready: dict[Address, deque[tuple[socket.socket, float]]] = {}
#: Per process of a forked run (`deal`): the sockets it keeps (`keep`).
_dealt: list[dict[Address, deque[tuple[socket.socket, float]]]] = []


def wanted(
    jobs: Iterable[tuple[Any, Any]], max_open: int | None, sharing: Callable[[str], int] = lambda endpoint: 1,
) -> Counter[Address]:
    """Sockets worth connecting ahead for (job file, spec) pairs: per address, one a
    job, at most the host's limit (divided by the processes `sharing` its endpoint),
    and at most `max_open` in all."""
    count: Counter[Address] = Counter()
    limits: dict[Address, int] = {}
    for file, spec in jobs:
        field = FIRST_CONNECTION.get(spec.kind)
        url = getattr(spec, field) if field else None
        if url is None or url.scheme not in SCHEMES:
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
            _ready.setdefault((host, port), deque()).append((sock, time.monotonic()))


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


def take(host: str, port: int, timeout: float | None) -> socket.socket | None:
    """A connected socket for `host:port`, blocking with `timeout`, or None: connect as usual."""
    sockets = _ready.get((host, port))
    while sockets:
        try:
            sock, opened = sockets.popleft()  # atomic: sessions' threads take at once
        except IndexError:
            return None
        if time.monotonic() - opened < FRESH and _connected(sock, timeout):
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
    """Close every socket not taken (in a forked run's parent: its copies only)."""
    _close(_ready)
    for dealt in _dealt:
        _close(dealt)


def _close(table: dict[Address, deque[tuple[socket.socket, float]]]) -> None:
    """Close the sockets of `table` one by one as `take` would take them, so a socket
    a session's thread takes meanwhile goes to that session alone."""
    while table:
        _, sockets = table.popitem()
        while sockets:
            try:
                sock, _ = sockets.popleft()
            except IndexError:  # the last one was taken meanwhile
                break
            sock.close()
