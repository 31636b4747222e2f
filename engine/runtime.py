"""A job while it runs: its context (what `engine.job.JobContext` promises), the
queues its planned items wait in, and the workers that drain them.

Items are queued by the connection they need (endpoint and connector identity; none
for local items). Queuing an item starts a worker for its queue when the queue holds
more items than it has workers and the bound allows one more: the job's own bound
(`concurrency` of the kind, else `max_connections`) and the host's limit for
connection queues, `LOCAL_WORKERS` for local ones. The planner waits while
`QUEUED_PER_JOB` items are queued (backpressure: a huge tree never sits in memory)
and resumes when half of them have started."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from xfer.kinds import job_class
from xfer.retry import mark_spent, worth_retrying
from xfer.workers import Hold, worker

if TYPE_CHECKING:
    from xfer.job import Connector, Job, Task
    from xfer.scheduler import Scheduler
    from xfer.spec import HostConfig, JobFile, JobSpec
    from xfer.state import StateStore
    from xfer.urls import Url

T = TypeVar("T")

#: Items a job may have planned but not started before its planner waits.
QUEUED_PER_JOB = 256
#: Items without a connection of their own that one job runs at once.
LOCAL_WORKERS = 256


class ItemQueue:
    """The items of one job that need connections of one identity (or none)."""

    __slots__ = ("connector", "items", "workers", "ready", "opening")

    def __init__(self, connector: Connector[Any] | None) -> None:
        self.connector = connector
        self.items: deque[Task[Any]] = deque()
        self.workers = 0
        self.ready = 0  # workers not running an item now: they take the next one
        self.opening = 0  # workers getting a connection for the next items


class JobRuntime:
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
        self.own_waiting = 0
        self.queues: dict[Hashable, ItemQueue] = {}
        #: Workers waiting for a connection before they take an item.
        self.acquiring: set[asyncio.Task[Any]] = set()
        self.queued = 0  # items in the queues
        self.unfinished = 0  # items queued or running
        self.planned = 0
        self._room = asyncio.Event()
        self._room.set()
        self._drained = asyncio.Event()
        self._drained.set()
        self.job: Job = job_class(spec.kind)(spec, self)
        self.worker_bound: int | None = self.job.concurrency or spec.max_connections

    # -- what a job may use (engine.job.JobContext) -----------------------------

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
        attempt = 1
        while True:
            try:
                async with Hold(self, connector) as conn:
                    return await action(conn)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not worth_retrying(exc, attempt, self.retries) or self.scheduler.stopping:
                    mark_spent(exc)
                    raise
                await self.scheduler.backoff(self, label, exc, attempt)
                attempt += 1

    async def barrier(self) -> None:
        await self._drained.wait()

    def cancel_idle_workers(self) -> None:
        """The job has ended: workers still waiting for a connection have no item to
        run on it (nor would they give it back to a pool that is closing)."""
        for waiting in list(self.acquiring):
            waiting.cancel()

    # -- queues -------------------------------------------------------------

    async def submit(self, task: Task[Any]) -> None:
        """Queue a planned item (waiting while the queues are full) and start a worker
        for it when no worker of its queue is free to take it and the bound allows."""
        while self.queued >= QUEUED_PER_JOB:
            self._room.clear()
            await self._room.wait()
        self.planned += 1
        connector = task.connector
        key = None if connector is None else (connector.url.endpoint, connector.identity)  # type: ignore[attr-defined]
        queue = self.queues.get(key)
        if queue is None:
            queue = self.queues[key] = ItemQueue(connector)
        queue.items.append(task)
        self.queued += 1
        self.unfinished += 1
        self._drained.clear()
        if queue.ready < len(queue.items) and queue.workers < self._bound(queue):
            queue.workers += 1
            queue.ready += 1
            self.scheduler.spawn(worker(self, queue))

    def _bound(self, queue: ItemQueue) -> int:
        if queue.connector is None:
            return LOCAL_WORKERS
        host_limit = self.scheduler.pool_for(self, queue.connector).limit
        return min(self.worker_bound, host_limit) if self.worker_bound else host_limit

    def take(self, queue: ItemQueue) -> Task[Any]:
        """The next item of `queue`, for a worker about to run it."""
        self.queued -= 1
        if self.queued <= QUEUED_PER_JOB // 2:
            self._room.set()
        return queue.items.popleft()

    def finished(self, label: str, nbytes: int, error: str | None, data: dict[str, Any]) -> None:
        """An item ended (ok, failed or cancelled): its one event, and the bookkeeping."""
        self.scheduler.events.emit("task.finished", job=self.name, task=label, bytes=nbytes, error=error, data=data)
        self.state.commit_soon()
        self.unfinished -= 1
        if not self.unfinished:
            self._drained.set()

    def drop_queued(self, reason: str) -> None:
        """The run is stopping: every item not started ends as cancelled."""
        for queue in self.queues.values():
            while queue.items:
                task = self.take(queue)
                self.finished(task.label, 0, reason, {"status": "cancelled", "attempts": 0, "duration": 0.0})
