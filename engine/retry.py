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


class _Deadline:
    """An item's timeout timer: cancels the task running it, remembers that it did."""

    __slots__ = ("expired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.expired = False

    def expire(self) -> None:
        self.expired = True
        self.task.cancel()


async def within(timeout: float, work: Awaitable[T], task: asyncio.Task[Any]) -> T:
    """`work`, run by `task`, within `timeout` seconds, else TimeoutError.

    `asyncio.timeout`'s logic on one timer handle: its context manager cost several µs
    per item, a visible part of a small file's cost. A worker task runs many items, so
    only our own cancel request is taken back (`uncancel`), never a stop's."""
    deadline = _Deadline(task)
    cancelling = task.cancelling()
    handle = asyncio.get_running_loop().call_later(timeout, deadline.expire)
    try:
        result = await work
    except BaseException as exc:
        handle.cancel()
        if deadline.expired:
            undone = task.uncancel() <= cancelling  # no other cancel request: ours to handle
            if (undone and isinstance(exc, asyncio.CancelledError)) or isinstance(exc, TimeoutError):
                raise TimeoutError(f"task took over {timeout:g}s") from None
        raise  # a TimeoutError of the task's own (a silent server) keeps its message
    handle.cancel()
    if deadline.expired:
        task.uncancel()
    return result
