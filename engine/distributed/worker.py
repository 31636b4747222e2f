"""`xfer worker`: take units from the queue and run each with the ordinary engine.

A unit runs on its own scheduler (its own pools), with the worker's Redis leases as
its host gate and its events sent to the coordinator. A worker told to stop (SIGINT,
SIGTERM) stops its units and exits without acknowledging them, so they run again
on another worker; a coordinator's stop reaches the units through the run's stop key."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import time
import uuid
from typing import Any

from xfer.distributed.broker import TASK_NAME, UnitBroker, connect
from xfer.distributed.eventlink import EventSender
from xfer.distributed.gate import RedisHostGate
from xfer.distributed.keys import WORKER_TTL, WORKERS, run_key, stop_key
from xfer.distributed.local import OWNS_BROKER_VARIABLE, PARENT_VARIABLE
from xfer.distributed.sealing import Sealer
from xfer.distributed.units import Unit
from xfer.events import EventBus

STOP_POLL_SECONDS = 0.2
#: How often a local worker (`--workers N`) checks that its coordinator still lives.
PARENT_POLL_SECONDS = 1.0
#: Units one worker runs at once (each runs many connections of its own).
UNITS_PER_WORKER = 32


class Worker:
    def __init__(self, broker_url: str, sealer: Sealer, name: str | None = None) -> None:
        self.broker = UnitBroker(broker_url)
        self.redis = connect(broker_url)
        self.sealer = sealer
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self.running: dict[str, tuple[Any, EventSender]] = {}  # attempt -> (scheduler, sender)
        self.states: dict[Any, Any] = {}  # state path -> StateStore, shared by this worker's units
        parent = os.environ.get(PARENT_VARIABLE)
        #: A local worker's coordinator: when it is gone (SIGKILL), nobody stops this worker.
        self.parent = int(parent) if parent else None
        self.owns_broker = os.environ.get(OWNS_BROKER_VARIABLE) == "1"
        self.orphaned = False

        async def run_unit(payload: str) -> None:  # taskiq registers functions, not methods
            await self.run_unit(payload)

        self.broker.register_task(run_unit, task_name=TASK_NAME)

    async def run_unit(self, payload: str) -> None:
        unit: Unit = self.sealer.open(payload)
        if not await self.redis.exists(run_key(unit.run)):
            return  # its coordinator is gone: nobody waits for this unit
        attempt = uuid.uuid4().hex[:12]
        sender = EventSender(self.redis, unit.run, unit.id, attempt)
        sender.mark("unit.begin", worker=self.name)
        if await self.redis.exists(stop_key(unit.run)):
            status = "stopped"  # the run was stopped before this unit began
        else:
            status = await self._run(unit, sender, attempt)
        sender.mark("unit.end", status=status)
        await sender.flush()

    async def _run(self, unit: Unit, sender: EventSender, attempt: str) -> str:
        from xfer.errors import describe
        from xfer.scheduler import RunOptions, Scheduler

        events = EventBus()
        events.subscribe(sender)
        gate = RedisHostGate(self.redis, unit.run)
        options = RunOptions(**unit.options, gate=gate, handle_signals=False)
        scheduler = Scheduler([unit.file], events, options, states=self.states)
        self.running[attempt] = (scheduler, sender)
        watcher = asyncio.get_running_loop().create_task(self._watch_stop(unit.run, scheduler))
        try:
            scheduler.build()
            await scheduler.run()
            return "stopped" if scheduler.stopping else "done"
        except Exception as exc:  # noqa: BLE001 - reported, the worker goes on
            sender.mark("unit.error", error=describe(exc))
            return "failed"
        finally:
            watcher.cancel()
            del self.running[attempt]
            scheduler.close()
            await gate.close()

    async def _watch_stop(self, run: str, scheduler: Any) -> None:
        while True:
            await asyncio.sleep(STOP_POLL_SECONDS)
            with contextlib.suppress(Exception):
                name = await self.redis.get(stop_key(run))
                if name:
                    scheduler.stop(signal.Signals[name.decode()])
                    return

    async def _announce(self) -> None:
        """Keep this worker listed as alive (the coordinator splits load tests by it)."""
        while True:
            with contextlib.suppress(Exception):
                await self.redis.zadd(WORKERS, {self.name: time.time() + WORKER_TTL})
            await asyncio.sleep(WORKER_TTL / 3)

    async def _watch_parent(self, stopping: asyncio.Event) -> None:
        """A local worker whose coordinator died (reparented: getppid changed) leaves."""
        while os.getppid() == self.parent:
            await asyncio.sleep(PARENT_POLL_SECONDS)
        self.orphaned = True
        stopping.set()

    async def serve(self) -> None:
        from taskiq.acks import AcknowledgeType
        from taskiq.api import run_receiver_task

        loop = asyncio.get_running_loop()
        stopping = asyncio.Event()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopping.set)
        await self.broker.startup()
        announcing = loop.create_task(self._announce())
        watching = loop.create_task(self._watch_parent(stopping)) if self.parent is not None else None
        while not stopping.is_set():
            receiver = loop.create_task(run_receiver_task(
                self.broker, max_async_tasks=UNITS_PER_WORKER, ack_time=AcknowledgeType.WHEN_EXECUTED,
                propagate_exceptions=False))
            await asyncio.wait([receiver, loop.create_task(stopping.wait())], return_when=asyncio.FIRST_COMPLETED)
            if not stopping.is_set():  # the broker connection broke: listen again shortly
                with contextlib.suppress(BaseException):
                    receiver.result()
                await asyncio.sleep(1.0)
        announcing.cancel()
        if watching is not None:
            watching.cancel()
        await self._abandon()

    async def _abandon(self) -> None:
        """Stop the running units and leave them unacknowledged: they run again elsewhere."""
        for scheduler, sender in list(self.running.values()):
            scheduler.stop(signal.SIGTERM)
            sender.mark("unit.abandoned", worker=self.name)
            with contextlib.suppress(Exception):
                await sender.flush()
        with contextlib.suppress(Exception):
            await self.redis.zrem(WORKERS, self.name)
        if self.orphaned and self.owns_broker:  # the private redis-server would stay forever
            with contextlib.suppress(Exception):
                await self.redis.shutdown(nosave=True)
        os._exit(0)  # no acknowledgement may run now


def main(broker_url: str, loop_factory: Any) -> int:
    from xfer.distributed.sealing import key_from_environment

    worker = Worker(broker_url, Sealer(key_from_environment()))
    with asyncio.Runner(loop_factory=loop_factory) as runner:
        runner.run(worker.serve())
    return 0
