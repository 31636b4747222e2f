"""The per-endpoint pool: its limit, reuse, eviction and shrinking on 421.

Connections here are in-memory objects: the pool's own logic is under test; the
protocol adapters are tested against real servers in tests/integration."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from xfer.errors import ConnectionLimitError, PermanentError
from xfer.events import EventBus
from xfer.pool import HostPool, Pools
from xfer.urls import parse_url


class Conn:
    def __init__(self, identity: str) -> None:
        self.identity = identity
        self.closed = False

    def is_usable(self) -> bool:
        return not self.closed

    async def close(self) -> None:
        self.closed = True


class Connector:
    def __init__(self, identity: str = "a", refuse_above: int | None = None) -> None:
        self.url = parse_url("ftp://127.0.0.1:2121/")
        self.identity = identity
        self.refuse_above = refuse_above
        self.open: list[Conn] = []

    async def connect(self) -> Conn:
        alive = [conn for conn in self.open if not conn.closed]
        if self.refuse_above is not None and len(alive) >= self.refuse_above:
            raise ConnectionLimitError("421 Too many connections")
        conn = Conn(self.identity)
        self.open.append(conn)
        return conn


def make_pool(limit: int) -> tuple[HostPool, list[Any]]:
    events = EventBus()
    seen: list[Any] = []
    events.subscribe(seen.append)
    return HostPool("127.0.0.1:2121", limit, events, connect_timeout=5), seen


def test_limit_is_never_exceeded_and_connections_are_reused() -> None:
    async def main() -> tuple[HostPool, Connector]:
        pool, _ = make_pool(3)
        connector = Connector()

        async def work() -> None:
            async with pool.lease(connector):
                await asyncio.sleep(0.001)

        await asyncio.gather(*(work() for _ in range(50)))
        return pool, connector

    pool, connector = asyncio.run(main())
    assert pool.peak_in_use == 3
    assert len(connector.open) == 3
    assert repr(pool) == "<HostPool 127.0.0.1:2121: 0 active, 3 idle, limit 3/3 | 0 waiting>"


def test_idle_connection_of_another_identity_is_closed_to_make_room() -> None:
    async def main() -> tuple[Connector, Connector, HostPool]:
        pool, _ = make_pool(1)
        alice, bob = Connector("alice"), Connector("bob")
        async with pool.lease(alice):
            pass
        async with pool.lease(bob):
            pass
        return alice, bob, pool

    alice, bob, pool = asyncio.run(main())
    assert alice.open[0].closed
    assert not bob.open[0].closed
    assert pool.idle_count == 1


def test_an_error_discards_the_connection_but_a_refusal_keeps_it() -> None:
    async def main() -> Connector:
        pool, _ = make_pool(2)
        connector = Connector()
        with pytest.raises(OSError):
            async with pool.lease(connector):
                raise OSError("connection reset")
        with pytest.raises(PermanentError):
            async with pool.lease(connector):
                raise PermanentError("550 no such file")
        async with pool.lease(connector):
            pass
        return connector

    connector = asyncio.run(main())
    assert [conn.closed for conn in connector.open] == [True, False]


def test_421_shrinks_the_pool_for_the_rest_of_the_run() -> None:
    async def main() -> tuple[HostPool, list[Any], int]:
        pool, seen = make_pool(4)
        connector = Connector(refuse_above=2)
        refused = 0

        async def work() -> None:
            nonlocal refused
            for _ in range(5):
                try:
                    async with pool.lease(connector):
                        await asyncio.sleep(0.001)
                    return
                except ConnectionLimitError:
                    refused += 1
                    await asyncio.sleep(0.001)

        await asyncio.gather(*(work() for _ in range(10)))
        return pool, seen, refused

    pool, seen, refused = asyncio.run(main())
    assert refused >= 1
    assert pool.limit == 2
    assert pool.configured_limit == 4
    assert [event.data["limit"] for event in seen if event.name == "pool.shrink"] == [2]


def test_a_cancelled_slot_waiter_whose_waiter_a_releaser_already_dropped_stays_cancelled() -> None:
    """A stop cancels waiting openers. A slot given back between the cancel and the
    opener's turn to run drops the cancelled waiter from the queue; the opener then
    failed to remove it again and raised ValueError, not CancelledError (every job of
    a stopped run reported "failed" with "<Future cancelled> is not in deque")."""

    async def main() -> None:
        pool, _ = make_pool(1)
        await pool._take_slot()
        waiting = asyncio.ensure_future(pool._take_slot())
        await asyncio.sleep(0)  # it waits for the slot
        waiting.cancel()
        pool._give_back_slot()  # before the waiter's task runs again
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert pool.in_use == 0
        await pool._take_slot()  # the slot is free
        assert pool.in_use == 1

    asyncio.run(main())


def test_a_cancelled_global_opener_whose_waiter_a_closer_already_dropped_stays_cancelled() -> None:
    """The same race for the run's global bound (`Pools.open_slot` and `closed`)."""

    async def main() -> None:
        pools = Pools(EventBus(), max_open=1)
        opener, _ = make_pool(4)
        await pools.open_slot(opener)
        waiting = asyncio.ensure_future(pools.open_slot(opener))
        await asyncio.sleep(0)
        waiting.cancel()
        pools.closed()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        assert pools.open == 0
        await pools.open_slot(opener)
        assert pools.open == 1

    asyncio.run(main())
