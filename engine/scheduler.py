"""Runs the tasks of every job at once, within the connection limits.

Bounds, all in one place:
- each job plans into at most `PENDING_PER_JOB` tasks not yet finished (backpressure:
  its planner waits there, so a huge tree is never held in memory);
- a job's own `max_connections`, when it sets one;
- the per-host pool (`engine.pool.HostPool`), shared by every job on that host;
- the global bound `defaults.max_connections` (or `--max-connections`).
They are taken in that order, so no cycle can deadlock.

Transient failures are retried with exponential backoff and full jitter; permanent
ones fail the task at once. On SIGINT/SIGTERM the scheduler stops planning, cancels
tasks still waiting for a connection, gives running tasks `grace_period` seconds to
end, then cancels them (tasks clean up: partial files stay under `.part` names)."""

from __future__ import annotations

import asyncio
import contextlib
import random
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from engine.errors import ConnectionLimitError, describe, is_transient
from engine.events import EventBus
from engine.job import Connector, Job, Task
from engine.kinds import job_class
from engine.pool import HostPool, Pools
from engine.spec import HostConfig, JobFile, JobSpec
from engine.state import StateStore
from engine.urls import Url

T = TypeVar("T")

#: Tasks a job may have planned but not finished before its planner waits.
PENDING_PER_JOB = 256


@dataclass(frozen=True)
class RunOptions:
    dry_run: bool = False
    force: bool = False
    max_connections: int | None = None
    grace_period: float | None = None


class _TaskContext:
    __slots__ = ("job", "attempt", "dry_run", "label", "_events", "unsent")

    def __init__(self, job: str, label: str, dry_run: bool, events: EventBus) -> None:
        self.job, self.label, self.dry_run, self._events = job, label, dry_run, events
        self.attempt = 1
        self.unsent = 0

    def progress(self, nbytes: int) -> None:
        """Bytes moved, reported one call late: the last amount (a small file's only
        one) rides on `task.finished` instead of an event of its own."""
        if self.unsent:
            self._events.emit("task.progress", job=self.job, task=self.label, bytes=self.unsent)
        self.unsent = nbytes

    def emit(self, name: str, **fields: Any) -> None:
        fields.setdefault("job", self.job)
        fields.setdefault("task", self.label)
        self._events.emit(name, **fields)


class JobRuntime:
    """A job's context (what `engine.job.JobContext` promises) plus its bookkeeping."""

    def __init__(self, scheduler: Scheduler, file: JobFile, spec: JobSpec, state: StateStore) -> None:
        self.scheduler = scheduler
        self.file = file
        self.spec = spec
        self.name = spec.name
        self.state = state
        self.dry_run = scheduler.options.dry_run
        self.force = scheduler.options.force
        self.retries = spec.retries if spec.retries is not None else file.defaults.retries
        self.task_timeout = spec.task_timeout or file.defaults.task_timeout
        self.own_limit = asyncio.Semaphore(spec.max_connections) if spec.max_connections else None
        self.pending = asyncio.Semaphore(PENDING_PER_JOB)
        self.inflight: set[asyncio.Task[None]] = set()
        self.job: Job = job_class(spec.kind)(spec, self)

    def emit(self, name: str, **fields: Any) -> None:
        fields.setdefault("job", self.name)
        self.scheduler.events.emit(name, **fields)

    def host_config(self, url: Url) -> HostConfig:
        return self.file.host_config(url)

    def resolve(self, path: Path | str) -> Path:
        return self.file.resolve(path)

    async def with_connection(
        self, connector: Connector[Any], action: Callable[[Any], Awaitable[T]], label: str
    ) -> T:
        async def once(_attempt: int) -> T:
            async with self.scheduler.connection(self, connector) as conn:
                return await action(conn)

        return await self.scheduler.retrying(self, label, once)

    def task_done(self, runner: asyncio.Task[None]) -> None:
        self.inflight.discard(runner)
        self.pending.release()

    async def barrier(self) -> None:
        while self.inflight:
            await asyncio.gather(*list(self.inflight), return_exceptions=True)


class Scheduler:
    def __init__(self, files: list[JobFile], events: EventBus, options: RunOptions, only: set[str] | None = None):
        self.files = files
        self.events = events
        self.options = options
        self.only = only
        self.pools = Pools(events)
        first = files[0].defaults
        self.global_limit = asyncio.Semaphore(options.max_connections or min(f.defaults.max_connections for f in files))
        self.grace_period = options.grace_period if options.grace_period is not None else first.grace_period
        self.stopped_by: signal.Signals | None = None
        self._stopped = asyncio.Event()
        self._planners: list[asyncio.Task[None]] = []
        self._waiting: set[asyncio.Task[Any]] = set()
        self._running: set[asyncio.Task[Any]] = set()
        self._states: dict[Path, StateStore] = {}
        self._pool_of: dict[tuple[int, str], HostPool] = {}  # (id of a JobRuntime in self.jobs, endpoint)
        self.jobs: list[JobRuntime] = []

    # -- building -----------------------------------------------------------

    def _state_for(self, file: JobFile) -> StateStore:
        path = file.state_path
        if path not in self._states:
            self._states[path] = StateStore(path)
        return self._states[path]

    def build(self) -> list[JobRuntime]:
        for file in self.files:
            for spec in file.jobs:
                if self.only is None or spec.name in self.only:
                    self.jobs.append(JobRuntime(self, file, spec, self._state_for(file)))
        return self.jobs

    # -- running ------------------------------------------------------------

    async def run(self) -> None:
        if not self.jobs:
            self.build()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self.stop, signum)
        self.events.emit("run.started", data={"jobs": [job.name for job in self.jobs]})
        try:
            await asyncio.gather(*(self._run_job(job) for job in self.jobs))
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signum)
            await self.pools.close()
            for state in self._states.values():
                state.commit()
        self.events.emit("run.finished", data={"stopped_by": self.stopped_by.name if self.stopped_by else None})

    def record_run(self, started: float, exit_code: int, totals: dict[str, Any]) -> None:
        """Add this run to the history table of every state file it used."""
        for state in self._states.values():
            state.record_run(started, exit_code, totals)

    def close(self) -> None:
        for state in self._states.values():
            state.close()

    def stop(self, signum: signal.Signals | int = signal.SIGTERM) -> None:
        """Stop taking work; running tasks get the grace period, then are cancelled."""
        if self.stopped_by is not None:
            self._cancel(self._running)  # a second signal: stop now
            return
        self.stopped_by = signal.Signals(signum)
        self._stopped.set()
        self.events.emit("run.stopping", data={"signal": self.stopped_by.name, "grace_period": self.grace_period})
        for planner in self._planners:
            planner.cancel()
        self._cancel(self._waiting)
        asyncio.get_running_loop().call_later(self.grace_period, self._cancel, self._running)

    @staticmethod
    def _cancel(tasks: set[asyncio.Task[Any]]) -> None:
        for task in list(tasks):
            task.cancel()

    async def _run_job(self, runtime: JobRuntime) -> None:
        runtime.emit("job.started", data={"kind": runtime.spec.kind})
        status = "ok"
        planner = asyncio.create_task(self._plan(runtime))
        self._planners.append(planner)
        try:
            await planner
        except asyncio.CancelledError:
            if self.stopped_by is None:
                raise
            status = "cancelled"
        except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the others
            status = "failed"
            runtime.emit("job.error", error=describe(exc))
        await runtime.barrier()
        if self.stopped_by is None and status == "ok":
            try:
                await runtime.job.finish()
            except Exception as exc:  # noqa: BLE001
                status = "failed"
                runtime.emit("job.error", error=describe(exc))
        runtime.state.commit()
        runtime.emit("job.finished", data={"status": status, "summary": runtime.job.summary()})

    async def _plan(self, runtime: JobRuntime) -> None:
        planned = 0
        async for task in runtime.job.plan():
            await runtime.pending.acquire()
            planned += 1
            runner = asyncio.create_task(self._run_task(runtime, task))
            runtime.inflight.add(runner)
            runner.add_done_callback(runtime.task_done)
        runtime.emit("job.planned", data={"tasks": planned})

    async def _run_task(self, runtime: JobRuntime, task: Task[Any]) -> None:
        label = task.label
        current = asyncio.current_task()
        ctx = _TaskContext(runtime.name, label, runtime.dry_run, self.events)
        started = time.monotonic()
        runtime.emit("task.started", task=label, data={"size": task.size})

        async def once(attempt: int) -> dict[str, Any] | None:
            ctx.attempt = attempt
            if task.connector is None:
                return await self._timed(runtime, task.run(None, ctx), current)  # type: ignore[arg-type]
            async with _Held(self, runtime, task.connector, current) as conn:
                return await self._timed(runtime, task.run(conn, ctx), current)  # type: ignore[arg-type]

        status, error, detail = "ok", None, None
        try:
            detail = await self.retrying(runtime, label, once, ctx)
        except asyncio.CancelledError:
            status, error = "cancelled", f"stopped by {self.stopped_by.name}" if self.stopped_by else "cancelled"
        except Exception as exc:  # noqa: BLE001 - reported, other tasks go on
            status, error = "failed", describe(exc)
        finally:
            self._waiting.discard(current)  # type: ignore[arg-type]
            self._running.discard(current)  # type: ignore[arg-type]
        runtime.emit(
            "task.finished",
            task=label,
            bytes=ctx.unsent,
            error=error,
            data={
                "status": status,
                "attempts": ctx.attempt,
                "duration": time.monotonic() - started,
                "detail": detail,
            },
        )
        runtime.state.commit_soon()

    def _timed(self, runtime: JobRuntime, work: Awaitable[T], task: asyncio.Task[Any]) -> Awaitable[T]:
        """`work` (run by `task`) within the job's task timeout (as it is when there
        is none: no coroutine of its own around every task)."""
        if runtime.task_timeout is None:
            return work
        return self._bounded(runtime, work, task)

    async def _bounded(self, runtime: JobRuntime, work: Awaitable[T], task: asyncio.Task[Any]) -> T:
        """`asyncio.timeout`'s logic on one timer handle: its context manager cost
        several µs per task, a visible part of a small file's cost."""
        deadline = _Deadline(task)
        cancelling = task.cancelling()
        handle = asyncio.get_running_loop().call_later(runtime.task_timeout, deadline.expire)  # type: ignore[arg-type]
        try:
            result = await work
        except BaseException as exc:
            handle.cancel()
            if deadline.expired:
                undone = task.uncancel() <= cancelling  # no other cancel request: ours to handle
                if (undone and isinstance(exc, asyncio.CancelledError)) or isinstance(exc, TimeoutError):
                    raise TimeoutError(f"task took over {runtime.task_timeout:g}s") from None
            raise  # a TimeoutError of the task's own (a silent server) keeps its message
        handle.cancel()
        if deadline.expired:
            task.uncancel()
        return result

    def pool_for(self, runtime: JobRuntime, connector: Connector[Any]) -> HostPool:
        """The host's pool, looked up once per job and endpoint (host blocks are
        pydantic models: building the default one for every task was costly)."""
        url: Url = connector.url  # type: ignore[attr-defined]
        key = (id(runtime), url.endpoint)
        pool = self._pool_of.get(key)
        if pool is None:
            host = runtime.file.host_config(url)
            timeout = host.connect_timeout or runtime.file.defaults.connect_timeout
            pool = self._pool_of[key] = self.pools.get(url.endpoint, runtime.file.host_limit(url), timeout)
        return pool

    def connection(self, runtime: JobRuntime, connector: Connector[Any]) -> _Held:
        """A pooled connection for this job, within its own, the host's and the global bound."""
        return _Held(self, runtime, connector)

    async def retrying(
        self,
        runtime: JobRuntime,
        label: str,
        once: Callable[[int], Awaitable[T]],
        ctx: _TaskContext | None = None,
    ) -> T:
        """Call `once(attempt)` until it succeeds, fails permanently, or retries run out."""
        attempt = 1
        while True:
            try:
                return await once(attempt)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not is_transient(exc) or attempt > runtime.retries or self.stopped_by is not None:
                    raise
                defaults = runtime.file.defaults
                delay = random.uniform(0, min(defaults.retry_backoff_max, defaults.retry_backoff * 2 ** (attempt - 1)))
                if isinstance(exc, ConnectionLimitError):
                    delay = max(delay, defaults.retry_backoff)
                runtime.emit("task.retry", task=label, error=describe(exc), data={"attempt": attempt, "delay": delay})
                await self._sleep_unless_stopped(delay)
                attempt += 1
                if ctx is not None:
                    ctx.attempt = attempt

    async def _sleep_unless_stopped(self, delay: float) -> None:
        current = asyncio.current_task()
        self._waiting.add(current)  # type: ignore[arg-type]
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopped.wait()
            if self.stopped_by is not None:
                raise asyncio.CancelledError
        finally:
            self._waiting.discard(current)  # type: ignore[arg-type]


class _Deadline:
    """A task's timeout timer: cancels the task, remembers that it did."""

    __slots__ = ("expired", "task")

    def __init__(self, task: asyncio.Task[Any]) -> None:
        self.task = task
        self.expired = False

    def expire(self) -> None:
        self.expired = True
        self.task.cancel()


class _Held:
    """`async with`: one pooled connection held by the current task, within its job's
    own limit, the host's pool and the global bound (taken in that order, given back
    in reverse). A class rather than a generator-based context manager: it runs once
    per task, and the generator machinery was a visible part of a small file's cost."""

    __slots__ = ("scheduler", "runtime", "connector", "task", "pool", "lease")

    def __init__(
        self, scheduler: Scheduler, runtime: JobRuntime, connector: Connector[Any], task: asyncio.Task[Any] | None = None
    ) -> None:
        self.scheduler = scheduler
        self.runtime = runtime
        self.connector = connector
        self.task = task  # the current task, when the caller knows it already

    async def __aenter__(self) -> Any:
        scheduler, own = self.scheduler, self.runtime.own_limit
        current = self.task = self.task or asyncio.current_task()
        scheduler._waiting.add(current)  # type: ignore[arg-type]
        try:
            if own is not None:
                await own.acquire()
            try:
                self.pool = scheduler.pool_for(self.runtime, self.connector)
                self.lease = await self.pool.acquire(self.connector)
                try:
                    await scheduler.global_limit.acquire()
                except BaseException as exc:
                    await self.pool.release(self.lease, exc)
                    raise
            except BaseException:
                if own is not None:
                    own.release()
                raise
        finally:
            scheduler._waiting.discard(current)  # type: ignore[arg-type]
        scheduler._running.add(current)  # type: ignore[arg-type]
        return self.lease.connection

    async def __aexit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> None:
        scheduler = self.scheduler
        scheduler._running.discard(self.task)  # type: ignore[arg-type]
        scheduler.global_limit.release()
        try:
            await self.pool.release(self.lease, exc)
        finally:
            if self.runtime.own_limit is not None:
                self.runtime.own_limit.release()
