"""Runs the jobs of every file at once, within the connection limits.

Each job's planner streams items into the job's queues; connection workers
(`engine.workers`) drain them, one held connection each (`engine.runtime` says how
many). Bounds, all in one place:
- a job plans at most `engine.runtime.QUEUED_PER_JOB` items ahead of its workers;
- a job's own bound: its kind's `concurrency`, else its `max_connections`;
- the per-host pool (`engine.pool.HostPool`), shared by every job on that host;
- the global bound on open connections, `defaults.max_connections` or
  `--max-connections` (`engine.pool.Pools`), idle ones included.
They are taken in that order, so no cycle can deadlock.

Transient failures are retried with exponential backoff and full jitter, at most
`retries` times per item (`engine.retry`); permanent ones fail the item at once.

Stopping (SIGINT/SIGTERM): planners stop, items not started end as cancelled, and
whatever waits (for a connection, a backoff) is cancelled at once; items already
running get `grace_period` seconds, then everything still going is cancelled
(partial files stay under `.part` names). A second signal cancels at once."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, NamedTuple

from xfer import connect_ahead
from xfer.errors import describe
from xfer.events import EventBus
from xfer.job import Connector
from xfer.pool import HostGate, HostPool, Pools
from xfer.retry import backoff_delay
from xfer.runtime import JobRuntime
from xfer.jobfile import JobFile, global_bound
from xfer.state import StateStore
from xfer.urls import Url

#: Seconds that closing the pools politely (QUIT, LOGOUT) may take once a run was
#: stopped; connections still closing then are cut (a stop must end soon after the grace).
CLOSE_AFTER_STOP = 0.25


class RunOptions(NamedTuple):
    dry_run: bool = False
    force: bool = False
    max_connections: int | None = None
    grace_period: float | None = None
    #: Per-host leases shared with other processes (a distributed run's worker).
    gate: HostGate | None = None
    #: Stop on SIGINT/SIGTERM; a worker of a distributed run handles them itself.
    handle_signals: bool = True


class Scheduler:
    def __init__(
        self, files: list[JobFile], events: EventBus, options: RunOptions, only: set[str] | None = None,
        states: dict[Path, StateStore] | None = None,
    ):
        """`states`: state stores shared with other schedulers of this process (a
        worker's units: one SQLite connection per file, or their writes would wait on
        each other's locks); this scheduler then leaves them open."""
        self.files = files
        self.events = events
        self.options = options
        self.only = only
        first = files[0].defaults
        self.pools = Pools(events, global_bound(files, options.max_connections), options.gate)
        self.pools.before_gate_wait = self._commit_states
        self.grace_period = options.grace_period if options.grace_period is not None else first.grace_period
        self.stopped_by: signal.Signals | None = None
        self.stopping = False
        self._stopped = asyncio.Event()
        self.waiting: set[asyncio.Task[Any]] = set()  # tasks waiting for a connection or a backoff
        self._spawned: set[asyncio.Task[Any]] = set()  # planners and workers
        self._states: dict[Path, StateStore] = states if states is not None else {}
        self._own_states = states is None
        self._pool_of: dict[tuple[int, str], HostPool] = {}  # (id of a JobRuntime in self.jobs, endpoint)
        self.jobs: list[JobRuntime] = []

    # -- building -----------------------------------------------------------

    def _commit_states(self) -> None:
        """Commit what this run wrote: another process of it, which this one is about to
        wait for, may be waiting for the state file's write lock."""
        for state in self._states.values():
            state.commit()

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

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        """Start a planner or worker that a stop can reach."""
        task = asyncio.get_running_loop().create_task(work)
        self._spawned.add(task)
        task.add_done_callback(self._spawned.discard)
        return task

    def pool_for(self, runtime: JobRuntime, connector: Connector[Any]) -> HostPool:
        """The host's pool, looked up once per job and endpoint (not once per item)."""
        url: Url = connector.url  # type: ignore[attr-defined]
        key = (id(runtime), url.endpoint)
        pool = self._pool_of.get(key)
        if pool is None:
            pool = self._pool_of[key] = self._pool(runtime, url)
        return pool

    def _pool(self, runtime: JobRuntime, url: Url) -> HostPool:
        host = runtime.file.host_config(url)
        timeout = host.connect_timeout or runtime.file.defaults.connect_timeout
        return self.pools.get(url.endpoint, runtime.file.host_limit(url), timeout)

    async def _adopt_ahead(self) -> None:
        """The sockets `xfer run` connected ahead go to their hosts' pools, which count
        them as open connections from now on (`engine/connect_ahead.py`)."""
        handed = connect_ahead.hand_over()
        for runtime in self.jobs:
            url = connect_ahead.first_url(runtime.spec)
            if url is None:
                continue
            for ahead in handed.pop((url.host, url.port), ()):
                await self._pool(runtime, url).adopt(ahead)
        for sockets in handed.values():  # no job of this run connects there after all
            for ahead in sockets:
                ahead.sock.close()

    # -- running ------------------------------------------------------------

    async def run(self) -> None:
        if not self.jobs:
            self.build()
        loop = asyncio.get_running_loop()
        signals = (signal.SIGINT, signal.SIGTERM) if self.options.handle_signals else ()
        for signum in signals:
            with contextlib.suppress(NotImplementedError, RuntimeError):
                loop.add_signal_handler(signum, self.stop, signum)
        self.events.emit("run.started", data={"jobs": [job.name for job in self.jobs]})
        unused = loop.call_later(connect_ahead.FRESH, self.pools.drop_ahead)
        try:
            await self._adopt_ahead()
            await asyncio.gather(*(self._run_job(job) for job in self.jobs))
        finally:
            unused.cancel()
            for signum in signals:
                with contextlib.suppress(NotImplementedError, RuntimeError):
                    loop.remove_signal_handler(signum)
            if self.stopping:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(CLOSE_AFTER_STOP):
                        await self._wind_down()
            else:
                await self._wind_down()
            for state in self._states.values():
                state.commit()
        self.events.emit("run.finished", data={"stopped_by": self.stopped_by.name if self.stopped_by else None})

    async def _wind_down(self) -> None:
        """Wait for every planner and worker to end, then close the pools. Workers
        cancelled as their job ended may still be unwinding (a lease being asked of
        another process's gate, a connection being opened): closing first would leave
        them a pool to put a connection back into, and the caller (a distributed
        worker) would give their leases back while the server still counts them."""
        await asyncio.gather(*self._spawned, return_exceptions=True)
        await self.pools.close()

    def record_run(self, started: float, exit_code: int, totals: dict[str, Any]) -> None:
        """Add this run to the history table of every state file it used."""
        for state in self._states.values():
            state.record_run(started, exit_code, totals)

    def close(self) -> None:
        for state in self._states.values():
            if self._own_states:
                state.close()
            else:
                state.commit()

    def stop(self, signum: signal.Signals | int = signal.SIGTERM) -> None:
        """Stop taking work; running items get the grace period, then everything is cancelled."""
        if self.stopping:
            self._cancel(self._spawned)  # a second signal: stop now
            return
        self.stopped_by = signal.Signals(signum)
        self.stopping = True
        self._stopped.set()
        self.events.emit("run.stopping", data={"signal": self.stopped_by.name, "grace_period": self.grace_period})
        reason = f"stopped by {self.stopped_by.name}"
        for runtime in self.jobs:
            runtime.drop_queued(reason)
        self._cancel(self.waiting)
        asyncio.get_running_loop().call_later(self.grace_period, self._cancel, self._spawned)

    @staticmethod
    def _cancel(tasks: set[asyncio.Task[Any]]) -> None:
        for task in list(tasks):
            task.cancel()

    async def _run_job(self, runtime: JobRuntime) -> None:
        runtime.emit("job.started", data={"kind": runtime.spec.kind})
        status = "ok"
        planner = self.spawn(self._plan(runtime))
        try:
            await planner
        except asyncio.CancelledError:
            if not self.stopping:
                raise
            status = "cancelled"
        except Exception as exc:  # noqa: BLE001 - one job's failure must not stop the others
            status = "failed"
            runtime.emit("job.error", error=describe(exc))
        if self.stopping:
            runtime.drop_queued(f"stopped by {self.stopped_by.name}")  # type: ignore[union-attr]
        await runtime.barrier()
        runtime.cancel_idle_workers()
        if not self.stopping and status == "ok":
            try:
                await runtime.job.finish()
            except Exception as exc:  # noqa: BLE001
                status = "failed"
                runtime.emit("job.error", error=describe(exc))
        elif self.stopping and status == "ok":
            status = "cancelled"
        runtime.state.commit()
        runtime.emit("job.finished", data={"status": status, "summary": runtime.job.summary()})

    async def _plan(self, runtime: JobRuntime) -> None:
        async for task in runtime.job.plan():
            if self.stopping:
                break
            await runtime.submit(task)
        runtime.emit("job.planned", data={"tasks": runtime.planned})

    async def backoff(self, runtime: JobRuntime, label: str, exc: BaseException, attempt: int) -> None:
        """Report a retry and wait its delay (cut short, as a cancellation, by a stop)."""
        delay = backoff_delay(runtime.file.defaults, exc, attempt)
        runtime.emit("task.retry", task=label, error=describe(exc), data={"attempt": attempt, "delay": delay})
        current: asyncio.Task[Any] = asyncio.current_task()  # type: ignore[assignment]
        self.waiting.add(current)
        try:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopped.wait()
            if self.stopping:
                raise asyncio.CancelledError
        finally:
            self.waiting.discard(current)
