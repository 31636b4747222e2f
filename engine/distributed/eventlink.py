"""Events from workers to the coordinator, in batches on one Redis stream per run.

A worker buffers the events of a unit and sends them every `FLUSH_SECONDS` (or every
`FLUSH_EVENTS`) as one stream entry, so a unit of 5,000 files costs tens of Redis
round trips, not thousands. Each batch names its unit and attempt; the pseudo-events
`unit.begin` and `unit.end` frame an attempt. Machines' monotonic clocks do not
compare: a batch carries the worker's clock at sending, and the coordinator moves the
batch's event times onto its own clock by the difference (off by the transit time)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from redis.asyncio import Redis

from xfer.events import Event

FLUSH_SECONDS = 0.1
FLUSH_EVENTS = 2000


def events_key(run: str) -> str:
    return f"xfer:run:{run}:events"


def _encode(event: Event) -> dict[str, Any]:
    encoded: dict[str, Any] = {"name": event.name, "t": event.time}
    for field in ("job", "task", "host", "error"):
        value = getattr(event, field)
        if value is not None:
            encoded[field] = value
    if event.bytes:
        encoded["bytes"] = event.bytes
    if event.data:
        encoded["data"] = event.data
    return encoded


class EventSender:
    """Subscribes to a unit's EventBus; sends what it hears in batches."""

    def __init__(self, redis: Redis, run: str, unit: str, attempt: str) -> None:
        self.redis = redis
        self.key = events_key(run)
        self.header = {"unit": unit, "attempt": attempt}
        self._buffer: list[dict[str, Any]] = []
        self._flusher: asyncio.TimerHandle | None = None
        self._sending: set[asyncio.Task[None]] = set()

    def __call__(self, event: Event) -> None:
        if event.name in ("run.started", "run.finished", "run.stopping"):
            return  # the coordinator's own
        self._buffer.append(_encode(event))
        if len(self._buffer) >= FLUSH_EVENTS:
            self._send_soon()
        elif self._flusher is None:
            self._flusher = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._send_soon)

    def mark(self, name: str, **data: Any) -> None:
        self._buffer.append({"name": name, "t": time.monotonic(), "data": data})
        self._send_soon()

    def _send_soon(self) -> None:
        if self._flusher is not None:
            self._flusher.cancel()
            self._flusher = None
        if not self._buffer:
            return
        batch, self._buffer = self._buffer, []
        payload = json.dumps({**self.header, "sent": time.monotonic(), "events": batch}, default=str)
        task = asyncio.get_running_loop().create_task(self._send(payload))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _send(self, payload: str) -> None:
        await self.redis.xadd(self.key, {"b": payload})

    async def flush(self) -> None:
        self._send_soon()
        await asyncio.gather(*self._sending)


async def receive(redis: Redis, run: str, block_ms: int = 200) -> AsyncIterator[tuple[dict[str, Any], list[Event]]]:
    """(batch header, events) as workers send them; yields ({}, []) when idle."""
    key, last = events_key(run), "0-0"
    while True:
        replies = await redis.xread({key: last}, block=block_ms, count=100)
        if not replies:
            yield {}, []
            continue
        for _, entries in replies:
            for entry_id, fields in entries:
                last = entry_id
                batch = json.loads(fields[b"b"])
                shift = time.monotonic() - batch["sent"]
                events = [Event(e["name"], e.get("job"), e.get("task"), e.get("host"), e.get("bytes", 0),
                                e.get("error"), e.get("data") or {}, e["t"] + shift) for e in batch["events"]]
                yield batch, events
        await redis.xtrim(key, minid=last)
