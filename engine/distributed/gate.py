"""Per-host connection limits held across every worker of a distributed run.

Each open connection holds a lease in Redis: a member of the host's sorted set whose
score is its expiry. A worker renews its leases every third of `LEASE_SECONDS`, so a
worker that dies (kill -9, a lost machine) gives its slots back within seconds
without anyone cleaning up. Taking a lease is one Lua script (drop expired leases,
compare with the limit, add), atomic in Redis; an opener that finds the host full
tries again shortly (`engine/pool.py`; connections open rarely next to the items run
on them).
When a server refuses a connection (421), the run's limit for that host drops to the
number open right now, for every worker (`shrink`).

Workers share a host fairly, as a forked run's processes do (`engine/forked_gate.py`):
a worker whose openers wait for a host says so (a member of the host's waiting set,
expiring unless renewed by the next try). While another worker waits, a worker takes
no lease beyond its share (the limit over the workers that hold or want the host),
and one that holds more closes its idle connections and hands busy ones back after
their item (`others_waiting`, `over_share`). Those two are asked after every item,
so they read a view of the host's leases and waiters that a background task
refreshes every `poll[1]` seconds while the worker holds or waits for the host."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import uuid
from collections import Counter, defaultdict
from collections.abc import Coroutine
from typing import Any

from redis.asyncio import Redis

LEASE_SECONDS = 10.0

#: KEYS: leases, shrunk limit, waiters. ARGV: limit, lease, lease ms, owner.
_ENTER = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
local limit = tonumber(ARGV[1])
local shrunk = redis.call('GET', KEYS[2])
if shrunk and tonumber(shrunk) < limit then limit = tonumber(shrunk) end
local leases = redis.call('ZRANGE', KEYS[1], 0, -1)
if #leases >= limit then return 0 end
local owner = ARGV[4]
local wanting, others = {[owner] = true}, false
for _, waiter in ipairs(redis.call('ZRANGE', KEYS[3], 0, -1)) do
  wanting[waiter] = true
  if waiter ~= owner then others = true end
end
if others then
  local mine, count = 0, 0
  for _, lease in ipairs(leases) do
    local holder = string.match(lease, '^[^:]+')
    wanting[holder] = true
    if holder == owner then mine = mine + 1 end
  end
  for _ in pairs(wanting) do count = count + 1 end
  if mine >= math.ceil(limit / count) then return 0 end
end
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
"""
#: KEYS: waiters. ARGV: owner, ms to count as waiting (0: no longer waits).
_WAIT = """
if tonumber(ARGV[2]) == 0 then return redis.call('ZREM', KEYS[1], ARGV[1]) end
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""
#: KEYS: leases, waiters and shrunk limit of each host in turn. Returns, per host, its
#: live leases, live waiters and shrunk limit: nothing where no one waits (the usual case).
_VIEW = """
local now = redis.call('TIME')
now = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
local hosts = {}
for i = 1, #KEYS, 3 do
  local waiters = redis.call('ZRANGEBYSCORE', KEYS[i + 1], now, '+inf')
  if #waiters > 0 then
    hosts[#hosts + 1] = {redis.call('ZRANGEBYSCORE', KEYS[i], now, '+inf'), waiters, redis.call('GET', KEYS[i + 2])}
  else
    hosts[#hosts + 1] = {}
  end
end
return hosts
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


def wait_key(endpoint: str) -> str:
    return f"xfer:wait:{endpoint}"


class _View:
    """A host as a worker last saw it in Redis: leases per worker, the workers waiting."""

    __slots__ = ("holders", "waiters", "shrunk")

    def __init__(self, holders: Counter[str], waiters: set[str], shrunk: int | None) -> None:
        self.holders, self.waiters, self.shrunk = holders, waiters, shrunk

    def share(self, owner: str, limit: int) -> int:
        """The limit over the workers that hold or want the host (this one included)."""
        if self.shrunk is not None:
            limit = min(limit, self.shrunk)
        return math.ceil(limit / len(self.holders.keys() | self.waiters | {owner}))

    def others_short(self, owner: str, limit: int) -> bool:
        """Another worker waits while holding less than its share."""
        share = self.share(owner, limit)
        return any(waiter != owner and self.holders[waiter] < share for waiter in self.waiters)


class RedisHostGate:
    """The leases of one worker process (every unit it runs shares them)."""

    poll = (0.02, 0.25)  # a try is a round trip to Redis
    #: Seconds a worker counts as waiting after its last try (the tries come every `poll[1]` at most).
    wait_seconds = 1.0

    def __init__(self, redis: Redis, run: str) -> None:
        self.redis = redis
        self.run = run
        self._owner = uuid.uuid4().hex[:12]
        self._serial = itertools.count()
        self.held: dict[str, list[str]] = defaultdict(list)
        self._enter = redis.register_script(_ENTER)
        self._renew = redis.register_script(_RENEW)
        self._shrink = redis.register_script(_SHRINK)
        self._wait = redis.register_script(_WAIT)
        self._look = redis.register_script(_VIEW)
        self._background: set[asyncio.Task[object]] = set()
        self._tail: asyncio.Task[object] | None = None  # the last background write
        self._renewer: asyncio.Task[None] | None = None
        self._waiting: dict[str, int] = {}
        self._views: dict[str, _View] = {}
        self._watcher: asyncio.Task[None] | None = None

    def _limit_key(self, endpoint: str) -> str:
        return f"xfer:run:{self.run}:limit:{endpoint}"

    async def try_enter(self, endpoint: str, limit: int) -> bool:
        lease = f"{self._owner}:{next(self._serial)}"
        keys = [lease_key(endpoint), self._limit_key(endpoint), wait_key(endpoint)]
        args = [limit, lease, int(LEASE_SECONDS * 1000), self._owner]
        asking = asyncio.ensure_future(self._enter(keys=keys, args=args))
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
        self._watch()
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
        """Tell the other workers (renewed by every try: it lapses `wait_seconds` after the last)."""
        if count or self._waiting.pop(endpoint, 0):
            if count:
                self._waiting[endpoint] = count
            ttl = int(self.wait_seconds * 1000) if count else 0
            self._later(self._wait(keys=[wait_key(endpoint)], args=[self._owner, ttl]))
            self._watch()

    def others_waiting(self, endpoint: str, limit: int) -> bool:
        view = self._views.get(endpoint)
        return view is not None and view.others_short(self._owner, limit)

    def over_share(self, endpoint: str, limit: int) -> bool:
        view = self._views.get(endpoint)
        return (
            view is not None and view.others_short(self._owner, limit)
            and len(self.held.get(endpoint, ())) > view.share(self._owner, limit)
        )

    def _watch(self) -> None:
        if self._watcher is None:
            self._watcher = asyncio.get_running_loop().create_task(self._watch_forever())

    async def _watch_forever(self) -> None:
        """Keep a view of each host this worker holds or waits for, every `poll[1]`
        seconds: one round trip for all of them."""
        while True:
            endpoints = sorted({endpoint for endpoint, leases in self.held.items() if leases} | self._waiting.keys())
            keys = [key for e in endpoints for key in (lease_key(e), wait_key(e), self._limit_key(e))]
            with contextlib.suppress(Exception):  # Redis away: the last view stands
                hosts = await self._look(keys=keys) if keys else []
                self._views = {
                    endpoint: _View(
                        Counter(lease.decode().partition(":")[0] for lease in host[0]),
                        {waiter.decode() for waiter in host[1]},
                        int(host[2]) if host[2] is not None else None,
                    )
                    for endpoint, host in zip(endpoints, hosts)
                    if host
                }
            await asyncio.sleep(self.poll[1])

    def _later(self, work: Coroutine[Any, Any, object]) -> None:
        """Run `work` in the background after this worker's earlier background writes,
        in the order they were asked for: a shrink counts the refused connection's
        lease as open, so the leave that follows it must not overtake it."""
        task = asyncio.get_running_loop().create_task(self._after(self._tail, work))
        self._tail = task
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @staticmethod
    async def _after(previous: asyncio.Task[object] | None, work: Coroutine[Any, Any, object]) -> object:
        if previous is not None and not previous.done():
            await asyncio.wait([previous])
        return await work

    async def _renew_forever(self) -> None:
        ttl = int(LEASE_SECONDS * 1000)
        while True:
            await asyncio.sleep(LEASE_SECONDS / 3)
            with contextlib.suppress(Exception):  # Redis away: the leases lapse, as a dead worker's would
                for endpoint, leases in list(self.held.items()):
                    if leases:
                        await self._renew(keys=[lease_key(endpoint)], args=[ttl, *leases])

    async def written(self) -> None:
        """Wait for the background writes asked for so far (leaves, shrinks, waiting)."""
        await asyncio.gather(*self._background, return_exceptions=True)

    async def close(self) -> None:
        """Give back what is still held (a unit cancelled mid-connect) and stop renewing."""
        for task in (self._renewer, self._watcher):
            if task is not None:
                task.cancel()
        with contextlib.suppress(Exception):
            await self.written()
            for endpoint, leases in self.held.items():
                if leases:
                    await self.redis.zrem(lease_key(endpoint), *leases)
            for endpoint in self._waiting:
                await self.redis.zrem(wait_key(endpoint), self._owner)
        self.held.clear()
        self._waiting.clear()
