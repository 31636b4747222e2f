"""What poplib and imaplib sessions share: blocking calls in the session's own thread,
one at a time, and a `close()` that breaks a call still blocked in that thread.

Each session gets its own single-thread executor (as the NNTP adapter does): on the
shared default executor (cores + 4 threads) eight sessions blocked in long FETCHes,
plus the stores' disk writes, queued behind each other and the connections opened last
waited for a free thread.

`asyncio.wait_for` around `run_in_executor` cancels the waiter, not the thread: the
only way to stop a blocked `recv` is to shut the socket down, so `close()` does that
first when a call is in flight and logs out politely only when none is."""

from __future__ import annotations

import abc
import asyncio
import contextlib
import functools
import socket
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from engine.errors import PermanentError, TransientError, XferError
from engine.mail.tls import is_certificate_error

T = TypeVar("T")
_LOGOUT_TIMEOUT = 2.0


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


async def run_blocking(
    executor: ThreadPoolExecutor,
    function: Callable[..., T],
    *args: object,
    translate: Callable[[BaseException], BaseException],
) -> T:
    """Run a blocking client call in `executor`; its errors leave translated."""
    try:
        return await asyncio.get_running_loop().run_in_executor(executor, functools.partial(function, *args))
    except Exception as exc:  # noqa: BLE001 - translated
        raise translate(exc) from None


async def open_session(
    function: Callable[[], T], where: str, translate: Callable[[BaseException], BaseException]
) -> tuple[T, ThreadPoolExecutor]:
    """Open a client (connect + log in, blocking) in a new single-thread executor that
    the session then keeps for all its calls; the thread goes away if opening fails."""
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=where.replace(" ", "-"))
    try:
        return await run_blocking(executor, function, translate=translate), executor
    except BaseException:
        executor.shutdown(wait=False)
        raise


class BlockingSession(abc.ABC):
    """A stdlib client driven from asyncio; subclasses say how to reach its socket,
    how to log out, and how to translate the library's own errors."""

    def __init__(self, where: str, executor: ThreadPoolExecutor) -> None:
        self.where = where
        self._executor = executor
        self._busy = False
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

    def is_usable(self) -> bool:
        sock = self._socket()
        return not self._closed and not self._busy and sock is not None and sock.fileno() != -1

    async def call(self, function: Callable[..., T], *args: object) -> T:
        """Run one blocking client call in the session's thread, errors translated."""
        if self._closed:
            raise TransientError(f"{self.where}: connection closed")
        self._busy = True
        try:
            return await run_blocking(self._executor, function, *args, translate=self._translate)
        finally:
            self._busy = False

    async def close(self) -> None:
        """Log out when idle (within a short timeout), then shut the socket down; never raise."""
        if self._closed:
            return
        if not self._busy:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(_LOGOUT_TIMEOUT):
                    await self.call(self._logout)
        self._closed = True
        self.shutdown()
        self._executor.shutdown(wait=False)  # the thread ends once a blocked call returns

    def shutdown(self) -> None:
        """Break any blocked call at once: shut the socket down and close it."""
        sock = self._socket()
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                sock.close()
