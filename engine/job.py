"""What a job kind implements and what the scheduler gives it.

A **Job** turns its spec into an async stream of items, **Tasks** (`plan`): one file,
one article range, one message. A Task names the **Connector** it needs (or none) and
says how to run on one **Connection**. The scheduler queues the items and runs them
on *connection workers*: one pooled connection takes the job's next item and keeps
going, so an item costs one call of `run` (no asyncio Task, lease or retry wrapper of
its own). Connections are interchangeable when their connector's `identity` is equal
(same protocol, host, user and TLS settings); the pool of an endpoint never holds
more of them than that host's limit, whoever asked.

A kind is: `plan` items, `run` one item on a connection, `summary` at the end. It
lives in two modules (`engine/kinds/__init__.py`): `engine/kinds/<kind>.py` with the
Job, and `engine/kinds/_spec_<kind>.py` with its spec model (pydantic, imported only
to validate a file). The Job gets its spec as a read-only record with the model's
fields (`engine/records.py`), never the model: keep run-time logic in the kind module.

Rules for job code:
- never hold a connection (`ctx.with_connection`) across a `yield` in `plan`: the
  items you yield may need that connection slot;
- raise `engine.errors` types (the protocol adapters do that for you) so the
  scheduler can tell a retry from a failure; an item is tried at most `retries` + 1
  times, so `run` must be safe to call again after a transient error;
- an item without a connector that takes connections itself (`ctx.with_connection`)
  is retried there, not again as a whole;
- report through `ctx.emit`/`ctx.progress`, never print.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from xfer.spec import HostConfig, JobFile, JobSpec
    from xfer.state import StateStore
    from xfer.urls import Url

ConnT = TypeVar("ConnT", bound="Connection")
T = TypeVar("T")


class Connection(Protocol):
    """One logged-in session, used by one task at a time."""

    def is_usable(self) -> bool:
        """Cheap local check (not closed, not broken) before reuse from the pool."""
        ...

    async def close(self) -> None:
        """Close politely if possible, at once otherwise; never raise."""
        ...


class Connector(Protocol[ConnT]):
    """Opens connections of one identity to one endpoint."""

    endpoint: str  # "host:port": the per-host limit key
    identity: Hashable  # equal identities can share pooled connections

    async def connect(self) -> ConnT: ...


class TaskContext(Protocol):
    """What a running task may use."""

    job: str
    attempt: int  # 1 for the first try
    dry_run: bool

    def progress(self, nbytes: int) -> None: ...

    def emit(self, name: str, **fields: Any) -> None: ...


class Task(abc.ABC, Generic[ConnT]):
    """One small unit of work: one file, one article range, one message."""

    #: The connector whose connection `run` needs, or None for local work.
    connector: Connector[ConnT] | None = None
    #: Expected bytes, for progress and ETA (None when unknown).
    size: int | None = None

    @property
    @abc.abstractmethod
    def label(self) -> str:
        """Short, unique within the job, no secrets: a path, a range, a message id."""

    @abc.abstractmethod
    async def run(self, conn: ConnT | None, ctx: TaskContext) -> dict[str, Any] | None:
        """Do the work; return details for the report (or None). Raise to fail."""

    def failed(self, error: Exception) -> dict[str, Any] | None:
        """The item failed for good (its last attempt raised `error`, or no connection
        could be had). Re-raise to report it failed (the default); return details to
        count it done instead (a load test counts errors, it does not fail on them)."""
        raise error


class JobContext(Protocol):
    """What the scheduler gives a job."""

    name: str
    file: JobFile
    state: StateStore
    dry_run: bool
    force: bool

    def emit(self, name: str, **fields: Any) -> None: ...

    def host_config(self, url: Url) -> HostConfig: ...

    def resolve(self, path: Path | str) -> Path: ...

    async def with_connection(
        self, connector: Connector[ConnT], action: Callable[[ConnT], Awaitable[T]], label: str
    ) -> T:
        """Run `action` on a pooled connection, with the job's retry policy."""
        ...

    async def barrier(self) -> None:
        """Wait until every task this job yielded so far has finished."""
        ...


class Job(abc.ABC):
    """A job kind: `kind` identifies it; `plan` streams its tasks. A kind registered
    from outside `engine/kinds` (`xfer.kinds.register`) names its spec model as `Spec`."""

    kind: ClassVar[str]
    Spec: ClassVar[type[JobSpec]]
    #: Items of this job run at once (on as many connections); None: the job's
    #: `max_connections`, else the host's limit.
    concurrency: int | None = None

    def __init__(self, spec: Any, ctx: JobContext) -> None:
        self.spec = spec
        self.ctx = ctx

    @abc.abstractmethod
    def plan(self) -> AsyncIterator[Task[Any]]:
        """Yield tasks as they are discovered (an async generator)."""

    async def finish(self) -> None:
        """Called once every task has ended, unless the run is stopping."""

    def summary(self) -> dict[str, Any]:
        """Kind-specific figures for the report (latency percentiles, deletions...)."""
        return {}

    def endpoints(self) -> list[Url]:
        """The servers this job talks to, for `xfer plan`."""
        return []
