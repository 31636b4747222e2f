"""Per-host connection limits held across every worker of a distributed run.

Each open connection holds a lease in Redis: a member of the host's sorted set whose
score is its expiry. A worker renews its leases every third of `LEASE_SECONDS`, so a
worker that dies (kill -9, a lost machine) gives its slots back within seconds
without anyone cleaning up. Taking a lease is one Lua script (drop expired leases,
compare with the limit, add), atomic in Redis; an opener that finds the host full
tries again shortly (`engine/pool.py`; connections open rarely next to the items run
on them).
When a server refuses a connection (421), the run's limit for that host drops to the
number open right now, for every worker (`shrink`)."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import uuid
from collections import defaultdict

from redis.asyncio import Redis

LEASE_SECONDS = 10.0

_ENTER = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local limit = tonumber(ARGV[1])
local shrunk = redis.call('GET', KEYS[2])
if shrunk and tonumber(shrunk) < limit then limit = tonumber(shrunk) end
if redis.call('ZCARD', KEYS[1]) >= limit then return 0 end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
_RENEW = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 'XX', now + tonumber(ARGV[1]), ARGV[i]) end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"""
_SHRINK = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local open = math.max(1, redis.call('ZCARD', KEYS[1]) - 1)
local shrunk = redis.call('GET', KEYS[2])
if not shrunk or open < tonumber(shrunk) then redis.call('SET', KEYS[2], open, 'EX', 86400) end
return open
"""


def lease_key(endpoint: str) -> str:
    return f"xfer:lease:{endpoint}"


class RedisHostGate:
    """The leases of one worker process (every unit it runs shares them). Workers do
    not tell each other that they wait: a worker keeps the connections it holds while
    its units have work for the host (a forked run's gate, `engine/forked_gate.py`,
    hands them over)."""

    poll = (0.02, 0.25)  # a try is a round trip to Redis

    def __init__(self, redis: Redis, run: str) -> None:
        self.redis = redis
        self.run = run
        self._owner = uuid.uuid4().hex[:12]
        self._serial = itertools.count()
        self.held: dict[str, list[str]] = defaultdict(list)
        self._enter = redis.register_script(_ENTER)
        self._renew = redis.register_script(_RENEW)
        self._shrink = redis.register_script(_SHRINK)
        self._background: set[asyncio.Task[object]] = set()
        self._renewer: asyncio.Task[None] | None = None

    def _limit_key(self, endpoint: str) -> str:
        return f"xfer:run:{self.run}:limit:{endpoint}"

    async def try_enter(self, endpoint: str, limit: int) -> bool:
        lease = f"{self._owner}:{next(self._serial)}"
        keys = [lease_key(endpoint), self._limit_key(endpoint)]
        asking = asyncio.ensure_future(self._enter(keys=keys, args=[limit, lease, int(LEASE_SECONDS * 1000)]))
        try:
            entered = await asyncio.shield(asking)
        except asyncio.CancelledError:
            self._later(self._give_back_if_taken(asking, endpoint, lease))
            raise
        if not entered:
            return False
        self.held[endpoint].append(lease)
        if self._renewer is None:
            self._renewer = asyncio.get_running_loop().create_task(self._renew_forever())
        return True

    async def _give_back_if_taken(self, asking: asyncio.Future[int], endpoint: str, lease: str) -> None:
        """A request whose asker was cancelled may still take its lease in Redis: nobody
        would hold it, and the host would be one connection short until it lapsed."""
        with contextlib.suppress(Exception):
            if await asking:
                await self.redis.zrem(lease_key(endpoint), lease)

    def leave(self, endpoint: str) -> None:
        leases = self.held.get(endpoint)
        if leases:
            self._later(self.redis.zrem(lease_key(endpoint), leases.pop()))

    def shrink(self, endpoint: str) -> None:
        self._later(self._shrink(keys=[lease_key(endpoint), self._limit_key(endpoint)]))

    def waiting(self, endpoint: str, count: int) -> None:
        """Not told to other workers."""

    def others_waiting(self, endpoint: str, limit: int) -> bool:
        return False

    def over_share(self, endpoint: str, limit: int) -> bool:
        return False

    def _later(self, work: object) -> None:
        task = asyncio.get_running_loop().create_task(work)  # type: ignore[arg-type]
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _renew_forever(self) -> None:
        ttl = int(LEASE_SECONDS * 1000)
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            with contextlib.suppress(Exception):  # Redis away: the leases lapse, as a dead worker's would
                for endpoint, leases in list(self.held.items()):
                    if leases:
                        await self._renew(keys=[lease_key(endpoint)], args=[ttl, *leases])

    async def close(self) -> None:
        """Give back what is still held (a unit cancelled mid-connect) and stop renewing."""
        if self._renewer is not None:
            self._renewer.cancel()
        with contextlib.suppress(Exception):
            await asyncio.gather(*self._background, return_exceptions=True)
            for endpoint, leases in self.held.items():
                if leases:
                    await self.redis.zrem(lease_key(endpoint), *leases)
        self.held.clear()
