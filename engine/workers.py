"""Connection workers: a pooled connection takes its job's next item and keeps going.

A worker is one asyncio Task that holds one connection (within the job's own bound,
the host's pool and the run's global bound) and runs the items of one queue on it,
one after the other, until the queue is empty. Per item that leaves a call of
`Task.run`, a timer when the job has a task timeout, and one `task.finished` event:
no Task, lease, retry wrapper or event trio of its own. A failure is where the cost
goes: the connection is given back (kept when the error was a protocol-level refusal),
the item waits out its backoff and is tried again on a fresh connection.

Fair shares: after an item a worker gives its connection back when anyone waits for a
slot of the same host or of the job's own bound, when another process of the run
waits for the host while this one holds more than its share, or (after
`GLOBAL_SHARE` seconds of holding it) when anyone waits for the global bound, and
queues up again behind them; without contention it keeps the connection.

Items without a connector (local work, or kinds that take connections themselves
through `ctx.with_connection`) run the same way on local workers."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

from xfer.errors import PermanentError, describe
from xfer.retry import ItemTimer, worth_retrying

#: Seconds a worker keeps its connection while others wait for a global slot.
GLOBAL_SHARE = 0.5
#: Seconds between two progress events of one item.
PROGRESS_INTERVAL = 0.1

if TYPE_CHECKING:
    from xfer.job import Connector, Task
    from xfer.pool import HostPool, Lease
    from xfer.runtime import ItemQueue, JobRuntime


class TaskContext:
    """What a running item may use (`engine.job.TaskContext`)."""

    __slots__ = ("job", "attempt", "dry_run", "label", "_events", "unsent", "_due")

    def __init__(self, runtime: JobRuntime, label: str) -> None:
        self.job, self.label, self.dry_run = runtime.name, label, runtime.dry_run
        self._events = runtime.scheduler.events
        self.attempt = 1
        self.unsent = 0
        self._due = time.monotonic() + PROGRESS_INTERVAL

    def progress(self, nbytes: int) -> None:
        """Bytes moved. Batched: one `task.progress` event at most every
        `PROGRESS_INTERVAL` seconds per item (a big file moves thousands of blocks a
        second); what is left rides on `task.finished` (a small file's only amount)."""
        self.unsent += nbytes
        now = time.monotonic()
        if now >= self._due:
            self._due = now + PROGRESS_INTERVAL
            self._events.emit("task.progress", job=self.job, task=self.label, bytes=self.unsent)
            self.unsent = 0

    def emit(self, name: str, **fields: Any) -> None:
        fields.setdefault("job", self.job)
        fields.setdefault("task", self.label)
        self._events.emit(name, **fields)


class Hold:
    """One connection held by the current task, within its job's own bound, the
    host's pool and the global bound (taken in that order, given back in reverse).
    `acquire`/`release` for a worker that keeps it across items; `async with` for
    one action (`ctx.with_connection`)."""

    __slots__ = ("runtime", "connector", "pool", "lease", "since")

    def __init__(self, runtime: JobRuntime, connector: Connector[Any]) -> None:
        self.runtime = runtime
        self.connector = connector
        self.pool: HostPool = runtime.scheduler.pool_for(runtime, connector)
        self.lease: Lease | None = None

    async def acquire(self) -> Any:
        runtime = self.runtime
        own, current = runtime.own_limit, asyncio.current_task()
        waiting = runtime.scheduler.waiting
        waiting.add(current)  # type: ignore[arg-type]
        try:
            if own is not None:
                runtime.own_waiting += 1
                try:
                    await own.acquire()
                finally:
                    runtime.own_waiting -= 1
            try:
                self.lease = await self.pool.acquire(self.connector)
            except BaseException:
                if own is not None:
                    own.release()
                raise
        finally:
            waiting.discard(current)  # type: ignore[arg-type]
        self.since = time.monotonic()
        return self.lease.connection

    async def release(self, error: BaseException | None) -> None:
        lease, self.lease = self.lease, None
        if lease is None:
            return
        try:
            await self.pool.release(lease, error)
        finally:
            if self.runtime.own_limit is not None:
                self.runtime.own_limit.release()

    def contended(self) -> bool:
        """Whether to give the connection back after this item: someone waits for a
        slot of its host or of its job (given back at once: it goes idle, and is
        reused when the waiter's identity matches), another process below its share
        waits for the host while this one holds more (`HostGate.over_share`), or
        someone waits for a global slot once the hold has had its share (giving it
        back then closes it: a new login)."""
        pool = self.pool
        if pool.waiting or pool.gate_waiting or self.runtime.own_waiting:
            return True
        gate = pool.pools.gate
        if gate is not None and gate.over_share(pool.endpoint, pool.limit):
            return True
        return bool(pool.pools.waiting) and time.monotonic() - self.since >= GLOBAL_SHARE

    async def __aenter__(self) -> Any:
        return await self.acquire()

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        await self.release(exc)


async def worker(runtime: JobRuntime, queue: ItemQueue) -> None:
    """Run `queue`'s items one after the other until it is empty: on one held
    connection (given back when someone waits for it, or broken), or with none for
    local items."""
    hold = Hold(runtime, queue.connector) if queue.connector is not None else None
    current: asyncio.Task[Any] = asyncio.current_task()  # type: ignore[assignment]
    timer = ItemTimer(runtime.task_timeout, current) if runtime.task_timeout else None
    busy = False  # running an item: not counted as ready
    try:
        while queue.items and not runtime.scheduler.stopping:
            connect_error = None
            if hold is not None and hold.lease is None:
                # The connection first, then the item: a worker that waits (for a slot,
                # or another process's lease on the host) holds no item that a worker
                # with a connection could run meanwhile. A failed connect counts as the
                # first attempt of the item taken next. No connection is opened for
                # items that other workers are opening connections for already: it
                # would be a login for nothing (counted as one in a session load test).
                if queue.opening >= len(queue.items):
                    break
                runtime.acquiring.add(current)
                queue.opening += 1
                try:
                    await hold.acquire()
                except Exception as exc:  # noqa: BLE001 - handed to the item's retry loop
                    connect_error = exc
                finally:
                    queue.opening -= 1
                    runtime.acquiring.discard(current)
                if not queue.items:
                    break
            task = runtime.take(queue)
            queue.ready -= 1
            busy = True
            await _run_item(runtime, task, hold, timer, connect_error)
            queue.ready += 1
            busy = False
            lease = hold.lease if hold is not None else None
            if lease is not None and (not lease.connection.is_usable() or hold.contended()):  # type: ignore[union-attr]
                await hold.release(None)  # type: ignore[union-attr]
    finally:
        queue.workers -= 1
        if not busy:
            queue.ready -= 1
        if timer is not None:
            timer.close()
        if hold is not None:
            await hold.release(None)


async def _run_item(
    runtime: JobRuntime, task: Task[Any], hold: Hold | None, timer: ItemTimer | None,
    connect_error: Exception | None = None,
) -> None:
    """One item, with its retries (`connect_error`: its first attempt's connect failed;
    `timer`: the worker's `task_timeout`); always ends with its `task.finished`."""
    scheduler = runtime.scheduler
    label = task.label
    ctx = TaskContext(runtime, label)
    started = time.monotonic()
    status, error, detail = "ok", None, None
    try:
        while True:
            conn = None
            try:
                if connect_error is not None:
                    error, connect_error = connect_error, None
                    raise error
                if hold is not None:
                    conn = hold.lease.connection if hold.lease is not None else await hold.acquire()
                work = task.run(conn, ctx)
                detail = await (timer.run(work) if timer is not None else work)
                break
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if hold is not None and hold.lease is not None:
                    if not isinstance(exc, PermanentError) or not hold.lease.connection.is_usable():
                        await hold.release(exc)
                if not worth_retrying(exc, ctx.attempt, runtime.retries) or scheduler.stopping:
                    try:
                        detail = task.failed(exc)
                    except Exception as final:  # noqa: BLE001 - reported, other items go on
                        status, error = "failed", describe(final)
                    break
                await scheduler.backoff(runtime, label, exc, ctx.attempt)
                ctx.attempt += 1
    except asyncio.CancelledError:
        status = "cancelled"
        error = f"stopped by {scheduler.stopped_by.name}" if scheduler.stopped_by else "cancelled"
        if hold is not None:
            await hold.release(asyncio.CancelledError())
        raise
    finally:
        runtime.finished(
            label, ctx.unsent, error, {
                "status": status, "attempts": ctx.attempt, "duration": time.monotonic() - started, "detail": detail,
            },
        )
