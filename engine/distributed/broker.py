"""The unit queue: taskiq on a Redis stream, with acknowledged delivery.

taskiq-redis's `RedisStreamBroker` re-delivers a message that stayed unacknowledged
for `idle_timeout`, which ties crash recovery to the length of the longest unit (a
live worker's 20-minute mirror would be taken over by another worker; upstream
taskiq-redis#101, #86), and it looks for such messages only after new ones arrived
(an idle fleet never recovers the unit of a worker that died). `UnitBroker` keeps its
behaviour but renews the claim on every unit this worker runs (XCLAIM … JUSTID resets
the idle time), and when no new unit comes, takes over units whose claim lapsed
(XAUTOCLAIM is atomic in Redis: one worker gets each). So a dead worker's unit runs
again elsewhere within `CLAIM_SECONDS`, and a live worker's unit never does.
Workers read one unit at a time, so units spread over the workers.

Every Redis client of a distributed run retries a command whose connection broke
(`RETRY_ON`): redis-py 8 otherwise fails the first command on each pooled connection
after Redis restarted ("Connection closed by server"), and a unit whose first command
failed so was acknowledged without running (a run waited for it forever). A worker
that finds no consumer group (Redis came back empty) declares it again and waits for
the next run's units (it logged a traceback ten times a second until a coordinator came)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Awaitable, Callable

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError
from taskiq import AckableMessage
from taskiq_redis import RedisStreamBroker

QUEUE = "xfer:units"
GROUP = "xfer-workers"
CLAIM_SECONDS = 6.0
TASK_NAME = "xfer.run_unit"
RETRY_ON = [RedisConnectionError, RedisTimeoutError]


def connect(url: str) -> Redis:
    """A Redis client that survives a broker restart (see the module's docstring)."""
    return Redis.from_url(url, retry_on_error=RETRY_ON)


class UnitBroker(RedisStreamBroker):
    def __init__(self, url: str, **connection: object) -> None:
        super().__init__(
            url, queue_name=QUEUE, consumer_group_name=GROUP, consumer_id="0", xread_count=1,
            xread_block=500, idle_timeout=int(CLAIM_SECONDS * 1000), **connection,  # type: ignore[arg-type]
            retry_on_error=RETRY_ON,
        )
        self.running: set[bytes] = set()  # stream ids of the units this worker runs

    def _ack_generator(self, id: str, queue_name: str) -> Callable[[], Awaitable[None]]:
        ack = super()._ack_generator(id, queue_name)

        async def acknowledge() -> None:
            await ack()
            self.running.discard(id)  # type: ignore[arg-type]

        return acknowledge

    def _message(self, msg_id: bytes, fields: dict[bytes, bytes]) -> AckableMessage:
        self.running.add(msg_id)
        return AckableMessage(data=fields[b"data"], ack=self._ack_generator(msg_id, QUEUE))  # type: ignore[arg-type]

    async def listen(self) -> AsyncGenerator[AckableMessage, None]:
        async with Redis(connection_pool=self.connection_pool) as redis:
            renewing = asyncio.get_running_loop().create_task(self._renew_claims(redis))
            try:
                while True:
                    try:
                        fetched = await redis.xreadgroup(GROUP, self.consumer_name, {QUEUE: ">"},
                                                         block=self.block, count=self.count)
                    except ResponseError as exc:
                        if not str(exc).startswith("NOGROUP"):
                            raise
                        await self._declare_consumer_group()  # Redis restarted empty: the queue starts over
                        continue
                    for _, messages in fetched or ():
                        for msg_id, fields in messages:
                            yield self._message(msg_id, fields)
                    if not fetched:
                        _, claimed, *_ = await redis.xautoclaim(QUEUE, GROUP, self.consumer_name,
                                                                min_idle_time=self.idle_timeout, count=1)
                        for msg_id, fields in claimed:
                            if fields:  # None: deleted from the stream meanwhile
                                yield self._message(msg_id, fields)
            finally:
                renewing.cancel()

    async def _renew_claims(self, redis: Redis) -> None:
        while True:
            await asyncio.sleep(CLAIM_SECONDS / 3)
            if self.running:
                with contextlib.suppress(Exception):  # Redis away: claims lapse, as a dead worker's would
                    await redis.xclaim(QUEUE, GROUP, self.consumer_name, min_idle_time=0,
                                       message_ids=list(self.running), justid=True)


def make_broker(url: str) -> UnitBroker:
    return UnitBroker(url)
