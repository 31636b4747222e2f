"""Events: how tasks, jobs and pools tell the rest of xfer what happens.

The progress display, the JSON report, the state writer and the tests all subscribe
to the same stream, so nothing in protocol or job code prints. Names are stable:

- `run.started`, `run.stopping` (data: signal), `run.finished`
- `job.started`, `job.planned` (planning is over, the task total is known),
  `job.error` (the job could not plan: login refused, no such directory),
  `job.note` (a kind's own record: a deleted file, a skipped name; data says what),
  `job.finished` (data: status)
- `task.progress` (bytes: delta), `task.retry` (error, data: delay),
  `task.finished` (bytes: the last delta, not sent as a `task.progress` of its own;
  data: status ok|failed|cancelled, attempts, duration): one per item, whatever
  happened to it (an item cancelled before it started has attempts 0). There is no
  `task.started`: connection workers run items back to back, and nothing read it.
- `pool.connect`, `pool.close`, `pool.shrink` (data: limit, reason)
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class Event:
    name: str
    job: str | None = None
    task: str | None = None
    host: str | None = None
    bytes: int = 0
    error: str | None = None
    data: dict[str, Any] = field(default_factory=dict)
    time: float = field(default_factory=time.monotonic)


Subscriber = Callable[[Event], None]


class EventBus:
    """Synchronous fan-out: subscribers must be quick and must not raise."""

    def __init__(self) -> None:
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def emit(self, name: str, **fields: Any) -> Event:
        return self.publish(Event(name, **fields))

    def publish(self, event: Event) -> Event:
        """Pass on an event as it is (one made in another process, say)."""
        for subscriber in self._subscribers:
            subscriber(event)
        return event
