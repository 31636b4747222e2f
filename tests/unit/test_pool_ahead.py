"""Sockets connected ahead (engine/connect_ahead.py) as their host's pool holds them:
open connections that every bound counts, closed to make room like idle ones, taken
over, slots and lease included, by a mail.fetch session.

Until these were adopted by the pools, a socket waiting to be taken (up to 2 s) was
counted by no bound: sessions of other hosts could fill the global bound beside it.
The sockets here are socketpair halves: the pool's accounting is under test; sessions
over real sockets connected ahead are tested against Dovecot in
tests/integration/test_connect_ahead.py."""

from __future__ import annotations

import asyncio
import copy
import socket
import time
from collections.abc import Iterator
from typing import Any

import pytest

from xfer.connect_ahead import FRESH, AheadSocket
from xfer.events import EventBus
from xfer.forked_gate import SharedHostGate
from xfer.pool import Pools
from tests.unit.test_pool import Conn, Connector

IMAP, FTP = "127.0.0.1:143", "127.0.0.1:21"


class FetchConnector(Connector):
    """A connector that takes sockets connected ahead (as mail.fetch's do)."""

    ahead = True

    def __init__(self) -> None:
        super().__init__("fetch")
        self.given: list[AheadSocket | None] = []

    async def connect(self, ahead: AheadSocket | None = None) -> Conn:  # type: ignore[override]
        self.given.append(ahead)
        return await super().connect()


@pytest.fixture
def sockets() -> Iterator[list[socket.socket]]:
    made: list[socket.socket] = []
    yield made
    for sock in made:
        sock.close()


def connected_ahead(made: list[socket.socket], age: float = 0.0) -> AheadSocket:
    ours, theirs = socket.socketpair()
    made += [ours, theirs]
    return AheadSocket(ours, time.monotonic() - age)


def is_closed(ahead: AheadSocket) -> bool:
    return ahead.sock.fileno() == -1


def test_a_socket_connected_ahead_holds_a_global_slot_and_gives_it_up_to_another_host(
    sockets: list[socket.socket],
) -> None:
    async def main() -> None:
        pools = Pools(EventBus(), max_open=1)
        imap, ftp = pools.get(IMAP, 4, 5), pools.get(FTP, 4, 5)
        ahead = connected_ahead(sockets)
        await imap.adopt(ahead)
        assert pools.open == 1 and imap.idle_count == 1
        lease = await ftp.acquire(Connector())
        assert is_closed(ahead) and imap.idle_count == 0  # closed to make room, not kept beside
        assert pools.open == 1 and pools.peak_open == 1
        await ftp.release(lease, None)

    asyncio.run(main())


def test_a_fetch_session_takes_the_socket_over_with_its_slot(sockets: list[socket.socket]) -> None:
    async def main() -> None:
        pools = Pools(EventBus(), max_open=1)
        imap = pools.get(IMAP, 4, 5)
        ahead = connected_ahead(sockets)
        await imap.adopt(ahead)
        connector = FetchConnector()
        lease = await imap.acquire(connector)
        assert connector.given == [ahead] and not is_closed(ahead)
        assert pools.open == 1 and pools.peak_open == 1 and imap.idle_count == 0
        await imap.release(lease, None)

    asyncio.run(main())


def test_a_connector_that_times_its_connect_never_gets_one(sockets: list[socket.socket]) -> None:
    """A load test (mail.sessions) times TCP, greeting and LOGIN as the login."""

    async def main() -> None:
        pools = Pools(EventBus(), max_open=4)
        imap = pools.get(IMAP, 4, 5)
        ahead = connected_ahead(sockets)
        await imap.adopt(ahead)
        connector = Connector("sessions")
        lease = await imap.acquire(connector)
        assert lease.connection in connector.open and not is_closed(ahead)
        assert pools.open == 2  # its own connection beside the socket, both counted
        await imap.release(lease, None)
        pools.drop_ahead()
        await pools.close()
        assert is_closed(ahead) and pools.open == 0

    asyncio.run(main())


def test_a_host_full_of_sessions_closes_its_unused_socket(sockets: list[socket.socket]) -> None:
    async def main() -> None:
        pools = Pools(EventBus())
        imap = pools.get(IMAP, 1, 5)
        ahead = connected_ahead(sockets)
        await imap.adopt(ahead)
        lease = await imap.acquire(Connector("sessions"))
        assert is_closed(ahead) and imap.in_use == 1 and imap.idle_count == 0 and pools.open == 1
        await imap.release(lease, None)

    asyncio.run(main())


def test_no_more_are_adopted_than_the_limit_and_the_bound_leave_room_for(sockets: list[socket.socket]) -> None:
    async def main() -> None:
        pools = Pools(EventBus(), max_open=2)
        imap, pop = pools.get(IMAP, 1, 5), pools.get("127.0.0.1:110", 4, 5)
        kept, over_limit, over_bound = (connected_ahead(sockets) for _ in range(3))
        await imap.adopt(kept)
        await imap.adopt(over_limit)  # the host's limit of 1
        await pop.adopt(connected_ahead(sockets))
        await pop.adopt(over_bound)  # the global bound of 2
        assert not is_closed(kept) and is_closed(over_limit) and is_closed(over_bound)
        assert pools.open == 2

    asyncio.run(main())


def test_a_stale_socket_is_closed_and_the_session_connects_anew(sockets: list[socket.socket]) -> None:
    async def main() -> None:
        pools = Pools(EventBus(), max_open=1)
        imap = pools.get(IMAP, 4, 5)
        stale = connected_ahead(sockets, age=FRESH + 1)
        await imap.adopt(stale)
        connector = FetchConnector()
        lease = await imap.acquire(connector)
        assert connector.given == [None] and is_closed(stale)
        assert pools.open == 1 and pools.peak_open == 1
        await imap.release(lease, None)

    asyncio.run(main())


def test_in_a_forked_run_each_socket_holds_a_lease_on_the_host(sockets: list[socket.socket]) -> None:
    """Across processes the other process sees the socket as a connection of the host."""
    gate = SharedHostGate(2, 8)
    views = [copy.copy(gate) for _ in range(2)]
    for column, view in enumerate(views):
        view.join(column)

    async def main() -> tuple[Any, ...]:
        here = Pools(EventBus(), max_open=8, gate=views[0])
        imap = here.get(IMAP, 2, 5)
        await imap.adopt(connected_ahead(sockets))
        await imap.adopt(connected_ahead(sockets))
        other_got = await views[1].try_enter(IMAP, 2)
        imap.drop_ahead()
        await here.close()
        return other_got, await views[1].try_enter(IMAP, 2)

    assert asyncio.run(main()) == (False, True)  # the limit of 2 was held by the two sockets
