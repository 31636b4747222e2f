"""Shared fixtures: a throwaway job kind for exercising the core without a network."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any, Literal

import pytest

import engine.kinds
from engine.job import Job, Task
from engine.spec import JobSpec


class ProbeSpec(JobSpec):
    kind: Literal["test.probe"]
    count: int = 3
    fail: list[int] = []
    transient: dict[int, int] = {}  # task index -> times it fails transiently first
    sleep: float = 0.0


class ProbeTask(Task[Any]):
    """Sleeps, counts its attempts, fails as the spec says."""

    def __init__(self, index: int, spec: ProbeSpec, attempts: dict[int, int]) -> None:
        self.index, self.spec, self.attempts = index, spec, attempts

    @property
    def label(self) -> str:
        return f"probe-{self.index}"

    async def run(self, conn: Any, ctx: Any) -> dict[str, Any]:
        from engine.errors import PermanentError, TransientError

        self.attempts[self.index] = self.attempts.get(self.index, 0) + 1
        await asyncio.sleep(self.spec.sleep)
        if self.attempts[self.index] <= self.spec.transient.get(self.index, 0):
            raise TransientError("451 try again")
        if self.index in self.spec.fail:
            raise PermanentError("550 no such file")
        ctx.progress(10)
        return {"index": self.index}


class ProbeJob(Job):
    kind = "test.probe"
    Spec = ProbeSpec
    attempts: dict[int, int] = {}

    async def plan(self):  # type: ignore[no-untyped-def]
        ProbeJob.attempts = {}
        for index in range(self.spec.count):
            yield ProbeTask(index, self.spec, ProbeJob.attempts)


@pytest.fixture
def probe_kind() -> Iterator[type[ProbeJob]]:
    """Registers `test.probe` for the duration of a test."""
    engine.kinds.register(ProbeJob)
    try:
        yield ProbeJob
    finally:
        engine.kinds.unregister("test.probe")
