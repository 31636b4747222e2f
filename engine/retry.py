"""How long one item may take and when it is tried again.

`retries: N` means at most N+1 attempts of an item, whatever the kind. An item that
runs `ctx.with_connection` itself (a task without a connector) is retried there; the
error that finally escapes is marked *spent*, so the scheduler does not try the whole
item again around it (that nesting once made (N+1)² attempts and resent mail)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, TypeVar

from xfer.errors import ConnectionLimitError, is_transient

if TYPE_CHECKING:
    from xfer.spec import Defaults

T = TypeVar("T")

_SPENT = "_xfer_retries_spent"
#: Timers may fire up to a millisecond early (uvloop's resolution): a deadline that
#: close counts as reached, rather than re-arming the handle for it again and again.
_TIMER_SLACK = 0.001


def mark_spent(exc: BaseException) -> None:
    """`exc` already went through its retries: no caller should retry it again."""
    setattr(exc, _SPENT, True)


def worth_retrying(exc: BaseException, attempt: int, retries: int) -> bool:
    """Whether attempt `attempt` (1 for the first) failing with `exc` earns another."""
    return attempt <= retries and is_transient(exc) and not getattr(exc, _SPENT, False)


def backoff_delay(defaults: Defaults, exc: BaseException, attempt: int) -> float:
    """Exponential backoff with full jitter; a server that refused a connection for
    being full gets at least the base delay (retrying at once only meets 421 again)."""
    import random  # not on every run's start path: only a failure gets here

    delay = random.uniform(0, min(defaults.retry_backoff_max, defaults.retry_backoff * 2 ** (attempt - 1)))
    if isinstance(exc, ConnectionLimitError):
        delay = max(delay, defaults.retry_backoff)
    return delay


class ItemTimer:
    """A time limit for awaits that one task runs one after the other, on one timer
    handle: `task_timeout` for a worker's items, and the FTP data connection's connect
    for each file of a session. A handle per await (call_later, then cancel) cost
    several µs, a visible part of a small item's cost. The handle fires at the running
    await's deadline; if that await has ended by then, it re-arms for the one running
    now (or lapses: the next await arms a new one), so quick awaits cost two attribute
    writes each. Only our own cancel request is taken back (`uncancel`), never a stop's."""

    __slots__ = ("timeout", "task", "_loop", "_deadline", "_handle", "_expired")

    def __init__(self, timeout: float, task: asyncio.Task[Any]) -> None:
        self.timeout, self.task = timeout, task
        self._loop = asyncio.get_running_loop()
        self._deadline: float | None = None  # of the item running
        self._handle: asyncio.TimerHandle | None = None
        self._expired = False

    async def run(self, work: Awaitable[T]) -> T:
        """`work`, run by the timer's task, within `timeout` seconds, else TimeoutError."""
        self._deadline = deadline = self._loop.time() + self.timeout
        if self._handle is None:
            self._handle = self._loop.call_at(deadline, self._fire)
        cancelling = self.task.cancelling()
        try:
            result = await work
        except BaseException as exc:
            self._deadline = None
            if self._expired:
                self._expired = False
                undone = self.task.uncancel() <= cancelling  # no other cancel request: ours to handle
                if (undone and isinstance(exc, asyncio.CancelledError)) or isinstance(exc, TimeoutError):
                    raise TimeoutError(f"task took over {self.timeout:g}s") from None
            raise  # a TimeoutError of the task's own (a silent server) keeps its message
        self._deadline = None
        if self._expired:
            self._expired = False
            self.task.uncancel()
        return result

    def _fire(self) -> None:
        self._handle = None
        deadline = self._deadline
        if deadline is None:
            return
        if self._loop.time() + _TIMER_SLACK < deadline:  # a later item's deadline
            self._handle = self._loop.call_at(deadline, self._fire)
            return
        self._expired = True
        self.task.cancel()

    def close(self) -> None:
        """The worker is done: no handle left behind."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
