"""The thread-per-session adapter behind the blocking stdlib clients (poplib, imaplib,
nntplib): each session runs its calls, one at a time, in its own single-thread executor.

On the shared default executor (cores + 4 threads) eight sessions blocked in long
FETCHes, plus the stores' disk writes, queued behind each other.

`asyncio.wait_for` around `run_in_executor` cancels the waiter, not the thread: the
only way to stop a blocked `recv` is to shut the socket down. So:
- a cancelled call (a task timeout, a stop) shuts its session's socket down at once:
  the thread returns, and `close()` does not wait for a logout queued behind it;
- a cancelled connect (the pool's connect timeout) shuts down the sockets the client
  has opened so far (`WatchedSockets` records them from the session's thread), and a
  client that finishes logging in after all is closed, not left open.
A server that accepts and then says nothing therefore costs no thread or socket once
the caller gives up on it."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import socket
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from xfer import connect_ahead
from xfer.errors import PermanentError, TransientError, XferError
from xfer.protocols._tls import is_certificate_error

T = TypeVar("T")
_LOGOUT_TIMEOUT = 2.0
_opening = threading.local()  # the Opening of the connect running in this thread, if any


def socket_error(exc: BaseException, where: str) -> BaseException:
    """A socket-level failure as an engine error: transient, except an untrusted certificate."""
    if isinstance(exc, XferError):
        return exc
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if is_certificate_error(exc):
        return PermanentError(f"{where}: TLS certificate not trusted ({text})")
    if isinstance(exc, (OSError, EOFError)):
        return TransientError(f"{where}: {text}")
    return exc


def _shut(sock: socket.socket | None) -> None:
    """Shut a socket down (this wakes a thread blocked in it) and close it."""
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()


class _Opening:
    """The clients a connect has created so far, so the loop can break it off, and the
    socket connected ahead that its pool gave it (`engine/connect_ahead.py`), if any."""

    def __init__(self, ahead: connect_ahead.AheadSocket | None = None) -> None:
        self._lock = threading.Lock()
        self._clients: list[tuple[Any, socket.socket]] = []
        self.cancelled = False
        self._ahead = ahead

    def take_ahead(self) -> connect_ahead.AheadSocket | None:
        """The socket connected ahead, for the one client that connects with it."""
        with self._lock:
            ahead, self._ahead = self._ahead, None
        return ahead

    def watch(self, client: Any, sock: socket.socket) -> None:
        with self._lock:
            self._clients.append((client, sock))
            cancelled = self.cancelled
        if cancelled:
            _shut(sock)

    def cancel(self) -> None:
        with self._lock:
            self.cancelled = True
            clients = list(self._clients)
        for client, sock in clients:
            _shut(sock)  # the socket as created
            _shut(getattr(client, "sock", None))  # and as wrapped since (STARTTLS)
        self.close_ahead()

    def close_ahead(self) -> None:
        """Close the socket connected ahead if no client took it."""
        ahead = self.take_ahead()
        if ahead is not None:
            ahead.sock.close()


class WatchedSockets:
    """Mixin for stdlib clients (before the library class in the bases): tells the
    connect running in this thread about each socket the client creates. A client
    class that `takes_ahead` (plain TCP, for mail.fetch) connects with the socket its
    pool gave the connect (`open_session(ahead=...)`), if it is still good."""

    #: Whether a socket connected ahead (`engine.connect_ahead`) may serve this client.
    takes_ahead = False

    def _create_socket(self, timeout: Any) -> socket.socket:
        opening: _Opening | None = getattr(_opening, "current", None)
        ahead = opening.take_ahead() if opening is not None and self.takes_ahead else None
        sock = connect_ahead.usable(ahead, timeout) if ahead is not None else None
        if sock is None:
            sock = super()._create_socket(timeout)  # type: ignore[misc]
        if opening is not None:
            opening.watch(self, sock)
        return sock


def _open_in_thread(opening: _Opening, function: Callable[[], T]) -> T:
    _opening.current = opening
    try:
        return function()
    finally:
        _opening.current = None
        opening.close_ahead()


async def open_session(
    function: Callable[[], T], where: str, translate: Callable[[BaseException], BaseException],
    discard: Callable[[T], None], ahead: connect_ahead.AheadSocket | None = None,
) -> tuple[T, ThreadPoolExecutor]:
    """Open a client (connect + log in, blocking) in a new single-thread executor that
    the session then keeps for all its calls; `ahead`: a socket connected ahead for
    it (closed if the client does not take it). If the caller gives up (cancellation),
    the client's sockets are shut down, a client that arrives late goes to `discard`,
    and the thread ends."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=where.replace(" ", "-"))
    opening = _Opening(ahead)
    future = executor.submit(_open_in_thread, opening, function)
    try:
        return await asyncio.wrap_future(future), executor
    except BaseException as exc:
        opening.cancel()
        future.add_done_callback(functools.partial(_discard_late, discard))
        executor.shutdown(wait=False)
        if isinstance(exc, Exception):
            raise translate(exc) from None
        raise


def _discard_late(discard: Callable[[T], None], future: Future[T]) -> None:
    if not future.cancelled() and future.exception() is None:
        with contextlib.suppress(Exception):
            discard(future.result())


class ThreadedSession(abc.ABC):
    """A stdlib client driven from asyncio; subclasses say how to reach its socket,
    how to log out, and how to translate the library's own errors."""

    def __init__(self, where: str, executor: ThreadPoolExecutor) -> None:
        self.where = where
        self._executor = executor
        self._calls = 0  # calls running or queued in the thread (a fetch may be queued behind another)
        self._broken = False
        self._closed = False

    @abc.abstractmethod
    def _socket(self) -> socket.socket | None:
        """The client's current socket (None when it has none)."""

    @abc.abstractmethod
    def _logout(self) -> None:
        """Leave politely (QUIT / LOGOUT); runs in a thread, may raise."""

    @abc.abstractmethod
    def _translate(self, exc: BaseException) -> BaseException:
        """The library's exception as an engine error."""

    def _breaks(self, exc: BaseException) -> bool:
        """Whether `exc` leaves the session unusable (the connection, not a reply, failed)."""
        return isinstance(exc, (OSError, EOFError))

    def is_usable(self) -> bool:
        sock = self._socket()
        return not (self._closed or self._broken or self._calls) and sock is not None and sock.fileno() != -1

    async def call(self, function: Callable[..., T], *args: object) -> T:
        """Run one blocking client call in the session's thread, errors translated.

        Cancelled, it shuts the socket down so the thread returns at once; the
        session is then broken (a reply may be half read)."""
        if self._closed or self._broken:
            raise TransientError(f"{self.where}: connection closed")
        self._calls += 1
        try:
            return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(function, *args))
        except asyncio.CancelledError:
            self._broken = True
            self.shutdown()
            raise
        except Exception as exc:  # noqa: BLE001 - translated
            self._broken = self._broken or self._breaks(exc)
            raise self._translate(exc) from None
        finally:
            self._calls -= 1

    async def beside(self, function: Callable[..., T], *args: object) -> T:
        """Run local work (a store's disk writes) in the session's thread, errors as
        they are: the thread that just read a batch also writes it, rather than a
        second thread that would fight it for the GIL at every system call."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(function, *args))

    async def quit(self) -> None:
        """Log out now (LOGOUT / QUIT), its errors raised, then close: for callers that
        time or count the logout (a session load test)."""
        try:
            await self.call(self._logout)
        finally:
            self._closed = True
            self.shutdown()
            self._executor.shutdown(wait=False)

    async def close(self) -> None:
        """Log out when idle and sound (within a short timeout), then shut the socket
        down; never raise."""
        if self._closed:
            return
        if not (self._calls or self._broken):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_LOGOUT_TIMEOUT):
                    await self.call(self._logout)
        self._closed = True
        self.shutdown()
        self._executor.shutdown(wait=False)  # the thread ends once a blocked call returns

    def shutdown(self) -> None:
        """Break any blocked call at once: shut the socket down and close it."""
        _shut(self._socket())
