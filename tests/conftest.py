"""Shared fixtures: a throwaway job kind for exercising the core without a network."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Literal

import pytest

import xfer.kinds
from xfer.job import Job, Task
from xfer.spec import JobSpec


class ProbeSpec(JobSpec):
    kind: Literal["test.probe"]
    count: int = 3
    fail: list[int] = []
    transient: dict[int, int] = {}  # task index -> times it fails transiently first
    sleep: float = 0.0
    concurrency: int | None = None  # the kind's own bound (as mail.load's)
    connect: str | None = None  # items run on connections to this URL (nothing listens)
    refuse: bool = False  # ... which refuse every connect (421)
    nested: bool = False  # items take their connection themselves (ctx.with_connection)
    block: bool = False  # items wait on a lock of the job's that is never released
    connect_delay: float = 0.0  # seconds a connect takes (a login)
    close_after: bool = False  # an item ends its connection (as a session's LOGOUT)
    plan_gap: float = 0.0  # seconds between planned items


class ProbeTask(Task[Any]):
    """Sleeps, counts its attempts, fails as the spec says."""

    def __init__(self, index: int, job: ProbeJob) -> None:
        self.index, self.job, self.spec, self.attempts = index, job, job.spec, job.attempts
        if job.connector is not None and not self.spec.nested:
            self.connector = job.connector

    @property
    def label(self) -> str:
        return f"probe-{self.index}"

    async def run(self, conn: Any, ctx: Any) -> dict[str, Any]:
        if self.spec.nested:
            return await self.job.ctx.with_connection(self.job.connector, lambda c: self._work(ctx), self.label)
        try:
            return await self._work(ctx)
        finally:
            if self.spec.close_after and conn is not None:
                await conn.close()

    async def _work(self, ctx: Any) -> dict[str, Any]:
        from xfer.errors import PermanentError, TransientError

        self.attempts[self.index] = self.attempts.get(self.index, 0) + 1
        ProbeJob.running += 1
        ProbeJob.peak_running = max(ProbeJob.peak_running, ProbeJob.running)
        try:
            if self.spec.block:
                async with self.job.lock:
                    await asyncio.sleep(3600)
            await asyncio.sleep(self.spec.sleep)
        finally:
            ProbeJob.running -= 1
        if self.attempts[self.index] <= self.spec.transient.get(self.index, 0):
            raise TransientError("451 try again")
        if self.index in self.spec.fail:
            raise PermanentError("550 no such file")
        ctx.progress(10)
        ProbeJob.completed += 1
        return {"index": self.index}


class ProbeJob(Job):
    kind = "test.probe"
    Spec = ProbeSpec
    attempts: dict[int, int] = {}
    running = peak_running = completed = 0

    def __init__(self, spec: Any, ctx: Any) -> None:
        super().__init__(spec, ctx)
        self.concurrency = spec.concurrency
        self.connector = CountingConnector(spec.connect, spec.refuse, spec.connect_delay) if spec.connect else None
        self.lock = asyncio.Lock()

    async def plan(self):  # type: ignore[no-untyped-def]
        self.attempts: dict[int, int] = {}
        ProbeJob.attempts = self.attempts  # the last job planned: what single-job tests read
        for index in range(self.spec.count):
            if index and self.spec.plan_gap:
                await asyncio.sleep(self.spec.plan_gap)
            yield ProbeTask(index, self)


@pytest.fixture
def probe_kind() -> Iterator[type[ProbeJob]]:
    """Registers `test.probe` for the duration of a test."""
    xfer.kinds.register(ProbeJob)
    ProbeJob.attempts = {}
    ProbeJob.running = ProbeJob.peak_running = ProbeJob.completed = 0
    CountingConnector.reset()
    try:
        yield ProbeJob
    finally:
        xfer.kinds.unregister("test.probe")


class CountingConnection:
    """A connection to nothing that counts itself open while it is."""

    def __init__(self, connector: CountingConnector) -> None:
        self.connector = connector
        self.closed = False

    def is_usable(self) -> bool:
        return not self.closed

    async def close(self) -> None:
        if not self.closed:
            self.closed = True
            CountingConnector.open_now -= 1


class CountingConnector:
    """Opens `CountingConnection`s to `host:port` (nothing listens): the scheduler's
    bounds are what is under test. `refuse` makes every connect fail transiently."""

    open_now = 0  # across every connector: what the global bound must hold
    peak_open = 0
    connects = 0

    def __init__(self, url: str = "ftp://127.0.0.1:9/", refuse: bool = False, delay: float = 0.0) -> None:
        from xfer.urls import parse_url

        self.url = parse_url(url)
        self.identity = ("counting", self.url.endpoint)
        self.refuse = refuse
        self.delay = delay

    async def connect(self) -> CountingConnection:
        from xfer.errors import TransientError

        CountingConnector.connects += 1
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refuse:
            raise TransientError("421 closing")
        CountingConnector.open_now += 1
        CountingConnector.peak_open = max(CountingConnector.peak_open, CountingConnector.open_now)
        return CountingConnection(self)

    @classmethod
    def reset(cls) -> None:
        cls.open_now = cls.peak_open = cls.connects = 0
