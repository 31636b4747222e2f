"""`xfer run … --broker URL`: enqueue the units and turn the workers' events back
into one run's events, report and exit code.

The coordinator keeps a key alive while it runs (workers skip units of a run whose
coordinator is gone). On SIGINT/SIGTERM it sets the run's stop key, which every
worker polls: their units stop as a local run stops (running items get the grace
period); units no worker has begun end as cancelled, and the coordinator stops
waiting at grace + `STOP_SLACK` seconds. If Redis goes away, the coordinator keeps
trying for `BROKER_PATIENCE` seconds, then ends the run with one clear error; a Redis
that came back without the run (restarted without persistence: checked every few
seconds, since a fast restart need not break any command) is the same
error, since the units it held are lost."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from redis.asyncio import Redis
from redis.exceptions import RedisError

from xfer.distributed import units as unit_split
from xfer.distributed.broker import TASK_NAME, UnitBroker, connect
from xfer.distributed.eventlink import events_key, receive
from xfer.distributed.keys import WORKERS, run_key, stop_key
from xfer.distributed.merge import RunMerger
from xfer.distributed.sealing import Sealer
from xfer.errors import describe
from xfer.events import EventBus
from xfer.jobfile import JobFile
from xfer.report import Report

RUN_KEY_SECONDS = 30
STOP_SLACK = 1.0
#: How often the coordinator checks that Redis still holds the run (a fast restart breaks no command).
SURVIVAL_CHECK_SECONDS = 2.0
#: Seconds without Redis before the run ends with an error; XFER_BROKER_PATIENCE sets it
#: (the fault tests use a few seconds).
BROKER_PATIENCE = float(os.environ.get("XFER_BROKER_PATIENCE") or 30.0)
#: How long to wait for a first worker to say it is alive (to size load-test shares).
WORKER_WAIT = 10.0


class BrokerLost(RuntimeError):
    pass


class Coordinator:
    def __init__(
        self, broker_url: str, sealer: Sealer, files: list[JobFile], only: set[str] | None,
        options: dict[str, Any], workers: int | None = None,
    ) -> None:
        self.broker_url = broker_url
        self.sealer = sealer
        self.files = files
        self.only = only
        self.options = options
        self.workers = workers
        self.run = uuid.uuid4().hex[:16]
        self.report = Report()
        self.events = EventBus()
        self.events.subscribe(self.report)
        self.pools: list[Any] = []  # hosts' pools live in the workers
        self.grace = files[0].defaults.grace_period
        self.stopped_by: signal.Signals | None = None
        self._stop_at: float | None = None
        #: Set when this process started the workers (`--workers N`): are any still running?
        self.workers_alive: Callable[[], bool] | None = None

    def subscribe(self, subscriber: Any) -> None:
        self.events.subscribe(subscriber)

    def build(self) -> None:
        """Nothing to build here: the workers build the jobs."""

    async def execute(self) -> Report:
        redis = connect(self.broker_url)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, self.stop, signum)
        try:
            await self._execute(redis)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            with contextlib.suppress(RedisError, OSError):
                await redis.delete(run_key(self.run), events_key(self.run), stop_key(self.run))
            await redis.aclose()
        return self.report

    async def _execute(self, redis: Redis) -> None:
        await redis.set(run_key(self.run), "1", ex=RUN_KEY_SECONDS)
        keeper = asyncio.get_running_loop().create_task(self._keep_alive(redis))
        units = unit_split.split(self.files, self.only, self.run, await self._worker_count(redis), self.options)
        merger = RunMerger(units, self.events)
        self.events.emit("run.started", data={"jobs": sorted({unit.job for unit in units}), "units": len(units)})
        try:
            await self._enqueue(units)
            await self._follow(redis, merger)
        except BrokerLost as exc:
            for job in merger.jobs.unfinished():
                self.events.emit("job.error", job=job, error=str(exc))
        finally:
            keeper.cancel()
        self._end(merger)

    async def _worker_count(self, redis: Redis) -> int:
        if self.workers is not None:
            return self.workers
        deadline = time.monotonic() + WORKER_WAIT
        while True:
            alive = await redis.zcount(WORKERS, time.time(), "+inf")
            if alive or time.monotonic() > deadline:
                return max(1, alive)
            await asyncio.sleep(0.2)

    async def _enqueue(self, units: list[unit_split.Unit]) -> None:
        from taskiq.kicker import AsyncKicker

        broker = UnitBroker(self.broker_url)
        await broker.startup()  # creates the consumer group if no worker did yet
        try:
            kicker = AsyncKicker(TASK_NAME, broker, labels={})
            for unit in units:
                await kicker.kiq(self.sealer.seal(unit))
        finally:
            await broker.shutdown()

    async def _follow(self, redis: Redis, merger: RunMerger) -> None:
        """Events until every unit ended, the stop's bound passed, or Redis is lost."""
        lost_since: float | None = None
        checked = time.monotonic()
        while not merger.done:
            try:
                async for header, events in receive(redis, self.run):
                    lost_since = None
                    if events:
                        merger.handle(header, events)
                    if merger.done or self._stop_due():
                        return
                    if self.workers_alive is not None and not self.workers_alive():
                        raise BrokerLost("every local worker exited (their errors are above)")
                    if time.monotonic() - checked > SURVIVAL_CHECK_SECONDS:  # a restart may go unnoticed
                        checked = time.monotonic()
                        await self._check_run_survived(redis)
            except (RedisError, OSError) as exc:
                if self._stop_due():
                    return
                now = time.monotonic()
                lost_since = lost_since or now
                if now - lost_since > BROKER_PATIENCE:
                    raise BrokerLost(f"broker {_safe(self.broker_url)} unreachable for {BROKER_PATIENCE:g}s: "
                                     f"{describe(exc)}") from None
                await asyncio.sleep(0.5)
                await self._check_run_survived(redis)

    async def _check_run_survived(self, redis: Redis) -> None:
        """The run's key is only ever refreshed, never made again: if it is gone, Redis
        lost the run (the workers may have declared the queue again, empty)."""
        with contextlib.suppress(RedisError, OSError):
            if not await redis.set(run_key(self.run), "1", ex=RUN_KEY_SECONDS, xx=True):
                raise BrokerLost(f"broker {_safe(self.broker_url)} restarted without the run's queue "
                                 "(units lost: run again, work already done is skipped)")

    def _stop_due(self) -> bool:
        return self._stop_at is not None and time.monotonic() >= self._stop_at

    async def _keep_alive(self, redis: Redis) -> None:
        while True:
            await asyncio.sleep(RUN_KEY_SECONDS / 3)
            with contextlib.suppress(RedisError, OSError):
                await redis.set(run_key(self.run), "1", ex=RUN_KEY_SECONDS, xx=True)  # see _check_run_survived

    def stop(self, signum: signal.Signals | int = signal.SIGTERM) -> None:
        """Tell every worker to stop this run's units; stop waiting after the grace."""
        if self.stopped_by is not None:
            self._stop_at = time.monotonic()  # a second signal: stop now
            return
        self.stopped_by = signal.Signals(signum)
        self._stop_at = time.monotonic() + self.grace + STOP_SLACK
        self.events.emit("run.stopping", data={"signal": self.stopped_by.name, "grace_period": self.grace})
        asyncio.get_running_loop().create_task(self._publish_stop())

    async def _publish_stop(self) -> None:
        redis = connect(self.broker_url)
        with contextlib.suppress(RedisError, OSError):
            await redis.set(stop_key(self.run), self.stopped_by.name, ex=3600)  # type: ignore[union-attr]
        await redis.aclose()

    def _end(self, merger: RunMerger) -> None:
        """Jobs that never finished end cancelled; a re-run unit means the report is
        rebuilt from the last attempts."""
        if merger.ran_again:
            report = Report()
            bus = EventBus()
            bus.subscribe(report)
            bus.emit("run.started", data={})
            merger.replay(bus)
            if self.stopped_by is not None:
                bus.emit("run.stopping", data={"signal": self.stopped_by.name})
            report.started = self.report.started
            self.report, bus_for_end = report, bus
        else:
            bus_for_end = self.events
        for job in merger.jobs.unfinished():
            bus_for_end.emit("job.finished", job=job, data={"status": "cancelled", "summary": {}})
        self.events.emit("run.finished", data={"stopped_by": self.stopped_by.name if self.stopped_by else None})
        if bus_for_end is not self.events:
            bus_for_end.emit("run.finished", data={})


def _safe(url: str) -> str:
    """The broker URL without its password (`redis://:secret@host` is how Redis takes one)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + netloc))
