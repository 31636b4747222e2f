"""One connection pool per endpoint (`host:port`); its size is that host's limit.

Every job that talks to a host shares its pool, so the limit holds for the whole run.
Idle connections are kept per connector identity (protocol, user, TLS settings) and
reused; when the pool is full of idle connections of another identity, the oldest is
closed to make room. A server that answers "too many connections" (421) shrinks the
pool for the rest of the run instead of failing jobs (rclone #2166).

The run's global bound (`defaults.max_connections`) counts connections *open*, idle
ones included, across every pool (`Pools`): a connection is opened only once it has
a global slot. When none is free, the oldest idle connection of any host is closed to
make one; when there is no idle one either, the opener waits, and connections given
back meanwhile are closed rather than kept idle, so the waiter is served.

A run over several processes adds a `HostGate`: each open connection also holds a
lease on its host shared by every process, taken after the local slots and before
connecting, given back when the connection closes. A distributed run's gate is in
Redis (`engine/distributed/gate.py`); a forked run's (`engine/forked_gate.py`) in
shared memory, and it also tells a process when another one waits for the host, so
that connections are handed over between processes as between jobs here.

Sockets `xfer run` connected while it started (`engine/connect_ahead.py`) are adopted
by their host's pool as idle connections of their own kind (`AHEAD`): each holds its
host slot, a global slot and its lease like any open connection, is closed to make
room like an idle one, and goes to the next opener whose connector takes such sockets
(mail.fetch's), which then opens no other connection: it takes over that socket's
slots and lease."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Coroutine, Hashable
from typing import TYPE_CHECKING, Any, Protocol

from xfer.errors import ConnectionLimitError, PermanentError, describe
from xfer.events import EventBus
from xfer.job import Connection, Connector

if TYPE_CHECKING:
    from xfer.connect_ahead import AheadSocket

#: The identity of an adopted socket connected ahead among a pool's idle connections.
AHEAD = "connected ahead"


class HostGate(Protocol):
    """A per-host bound held across processes: one lease per open connection."""

    #: Seconds between a waiting opener's tries (the first, doubling up to the
    #: second), unless a connection goes idle here meanwhile.
    poll: tuple[float, float]

    async def try_enter(self, endpoint: str, limit: int) -> bool:
        """Take a lease on `endpoint` if fewer than `limit` are held across all workers."""
        ...

    def leave(self, endpoint: str) -> None:
        """Give one lease on `endpoint` back (a connection closed, or never opened)."""
        ...

    def shrink(self, endpoint: str) -> None:
        """The server refused a connection: hold every worker to what is open now."""
        ...

    def waiting(self, endpoint: str, count: int) -> None:
        """How many openers of this process wait for a lease on `endpoint` now."""
        ...

    def others_waiting(self, endpoint: str, limit: int) -> bool:
        """Whether another process waits for a lease that a connection of `endpoint`
        holds here and may take it (an idle one is then closed rather than kept)."""
        ...

    def over_share(self, endpoint: str, limit: int) -> bool:
        """Whether this process should hand a busy connection of `endpoint` back after
        its item: another waits, holding less than its share, while this one holds more."""
        ...


class Lease:
    """A connection lent to one task; `discard()` closes it instead of returning it."""

    __slots__ = ("connection", "identity", "reusable")

    def __init__(self, connection: Connection, identity: Hashable) -> None:
        self.connection = connection
        self.identity = identity
        self.reusable = True

    def discard(self) -> None:
        self.reusable = False


class HostPool:
    def __init__(
        self, endpoint: str, limit: int, events: EventBus, connect_timeout: float, pools: Pools | None = None
    ) -> None:
        self.endpoint = endpoint
        self.pools = pools or Pools(events)
        self.limit = limit
        self.configured_limit = limit
        self.connect_timeout = connect_timeout
        self.in_use = 0
        self.peak_in_use = 0
        self.waiting = 0
        self.connects = 0
        self.shrinks: list[str] = []
        self._idle: OrderedDict[int, tuple[Hashable, Connection]] = OrderedDict()
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._handed = 0  # slots handed to waiters that have not resumed yet
        self.gate_waiting = 0  # openers waiting for a lease from the gate
        self._connecting = 0  # slots whose connection is being opened
        self._idle_appeared = asyncio.Event()
        self._offering: asyncio.TimerHandle | None = None
        self._events = events

    def __repr__(self) -> str:
        return (
            f"<HostPool {self.endpoint}: {self.in_use} active, {len(self._idle)} idle, "
            f"limit {self.limit}/{self.configured_limit} | {self.waiting} waiting>"
        )

    @property
    def idle_count(self) -> int:
        return len(self._idle)

    @contextlib.asynccontextmanager
    async def lease(self, connector: Connector[Any]) -> AsyncIterator[Lease]:
        """Lend a connection of `connector`'s identity; opens one when none is idle.

        An exception inside the block discards the connection unless it is a
        PermanentError (a protocol-level refusal leaves the session usable)."""
        lease = await self.acquire(connector)
        try:
            yield lease
        except BaseException as exc:
            await self.release(lease, exc)
            raise
        await self.release(lease, None)

    async def acquire(self, connector: Connector[Any]) -> Lease:
        """`lease` without a context manager (the scheduler's per-task path);
        every acquire needs one `release`."""
        return await self._acquire(connector)

    async def release(self, lease: Lease, error: BaseException | None) -> None:
        """Give the connection back; `error` (what ended its use, if anything) other
        than a PermanentError discards it."""
        if error is not None and not isinstance(error, PermanentError):
            lease.discard()
        await self._release(lease, closing_later=isinstance(error, asyncio.CancelledError))

    async def _take_slot(self) -> None:
        """Wait for a free slot, first come first served.

        A releaser hands its slot straight to the oldest waiter (one wake-up per
        freed slot, not a wake-up storm of every waiter)."""
        if self.in_use < self.limit and not self._waiters:
            self.in_use += 1
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            self.waiting += 1
            try:
                await waiter
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._handed -= 1
                    self._give_back_slot()  # handed a slot just as we were cancelled
                elif waiter in self._waiters:  # a releaser drops cancelled waiters it meets
                    self._waiters.remove(waiter)
                raise
            finally:
                self.waiting -= 1
            self._handed -= 1
        self.peak_in_use = max(self.peak_in_use, self.in_use)

    def _give_back_slot(self) -> None:
        self.in_use -= 1
        while self._waiters and self.in_use < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self.in_use += 1
                self._handed += 1
                waiter.set_result(None)

    async def _acquire(self, connector: Connector[Any]) -> Lease:
        await self._take_slot()
        reused = self._take_idle(connector.identity)
        # mail.fetch's connectors (`ahead=True`) take sockets connected ahead; a load test's time the connect.
        ahead = self._take_idle(AHEAD) if reused is None and getattr(connector, "ahead", False) else None
        for connection in self._evict_for_room():
            await self._close(connection, "evicted for another identity")
        if reused is not None:
            return Lease(reused, connector.identity)
        if ahead is None:
            reused = await self._open_slots(connector.identity)
            if reused is not None:
                return Lease(reused, connector.identity)
        # A socket connected ahead hands its global slot and lease to this connection.
        connecting = asyncio.ensure_future(connector.connect(ahead=ahead) if ahead is not None else connector.connect())
        self._connecting += 1
        try:
            async with asyncio.timeout(self.connect_timeout):
                connection = await asyncio.shield(connecting)
        except BaseException as exc:
            self._connecting -= 1
            if isinstance(exc, asyncio.CancelledError):
                # Cancelled mid-login (or just as it ended): finish it and close politely
                # in the background, so the server has seen it go before its slot and
                # lease are free again.
                self.pools.close_later(self._close_when_connected(connecting))
                self._give_back_slot()
                raise
            connecting.cancel()
            if isinstance(exc, ConnectionLimitError):
                self._shrink(describe(exc))
            self._closed()
            self._give_back_slot()
            if isinstance(exc, TimeoutError):
                raise TimeoutError(f"connecting to {self.endpoint} took over {self.connect_timeout:g}s") from None
            raise
        self._connecting -= 1
        self.connects += 1
        self._events.emit("pool.connect", host=self.endpoint, data={"in_use": self.in_use, "limit": self.limit})
        return Lease(connection, connector.identity)

    async def _open_slots(self, identity: Hashable) -> Connection | None:
        """The global slot and (across processes) the lease for a new connection; or,
        when a connection of `identity` went idle meanwhile, that one (then neither)."""
        try:
            await self.pools.open_slot(self)
        except BaseException:
            self._give_back_slot()
            raise
        if self.pools.gate is None:
            return None
        try:
            reused = await self._enter_gate(identity)
        except BaseException:
            self.pools.closed()
            self._give_back_slot()
            raise
        if reused is not None:
            self.pools.closed()  # no new connection after all: its global slot goes back
        return reused

    async def adopt(self, ahead: AheadSocket) -> None:
        """Hold a socket connected ahead as an idle connection: within the host's limit,
        a free global slot and (across processes) a lease, else it is closed."""
        gate = self.pools.gate
        if self.in_use + len(self._idle) >= self.limit or not self.pools.take_free_slot():
            ahead.sock.close()
            return
        if gate is not None and not await gate.try_enter(self.endpoint, self.limit):
            self.pools.closed()
            ahead.sock.close()
            return
        self._idle[id(ahead)] = (AHEAD, ahead)  # not offered to other processes: its session comes in ms

    def drop_ahead(self) -> None:
        """Close the sockets connected ahead that no session took."""
        for key, (identity, connection) in list(self._idle.items()):
            if identity == AHEAD:
                del self._idle[key]
                self.pools.close_later(self._close(connection, "connected ahead, not used"))

    async def _close_when_connected(self, connecting: asyncio.Future[Connection]) -> None:
        try:
            connection = await connecting
        except BaseException:  # noqa: BLE001 - nothing opened, nothing to close
            self._closed()
            return
        await self._close(connection, "opened for a cancelled task")

    async def _enter_gate(self, identity: Hashable) -> Connection | None:
        """Wait for a lease on the host from the gate (another process may hold them
        all). Meanwhile a connection of this pool that goes idle is taken when its
        identity matches, else closed: an idle connection holds a lease that someone
        here waits for (two processes' idle connections would otherwise wait for each
        other). Returns the connection taken, or None when a lease was had."""
        gate = self.pools.gate
        assert gate is not None
        first, most = gate.poll
        delay = first
        self.gate_waiting += 1
        try:
            while not await gate.try_enter(self.endpoint, self.limit):
                if delay == first:
                    self.pools.before_gate_wait()
                gate.waiting(self.endpoint, self.gate_waiting)
                reused = self._take_idle(identity)
                if reused is not None:
                    return reused
                idle = self.take_oldest_idle()
                if idle is not None:
                    await self._close(idle, "closed: its lease on the host is wanted")
                    continue
                self._idle_appeared.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._idle_appeared.wait()
                delay = min(most, delay * 2)
        finally:
            self.gate_waiting -= 1
            gate.waiting(self.endpoint, self.gate_waiting)
        return None

    def _take_idle(self, identity: Hashable) -> Connection | None:
        while True:
            for key, (idle_identity, connection) in self._idle.items():
                if idle_identity == identity:
                    break
            else:
                return None
            del self._idle[key]
            if connection.is_usable():
                return connection
            asyncio.get_running_loop().create_task(self._close(connection, "broken while idle"))

    def _evict_for_room(self) -> list[Connection]:
        """Idle connections to close so that open connections stay within the limit.

        Slots handed to waiters that have not resumed yet hold no connection: such a
        waiter may be about to take one of these idle connections."""
        surplus = []
        while self._idle and self.in_use - self._handed + len(self._idle) > self.limit:
            _, (_, connection) = self._idle.popitem(last=False)
            surplus.append(connection)
        return surplus

    def _shrink(self, reason: str) -> None:
        """The server refused a connection: its real limit is what we hold open now
        (slots whose connection is still being opened do not count)."""
        new_limit = max(1, self.in_use - self._connecting - 1 + len(self._idle))
        if self.pools.gate is not None:
            self.pools.gate.shrink(self.endpoint)
        if new_limit < self.limit:
            self.limit = new_limit
            self.shrinks.append(reason)
            self._events.emit("pool.shrink", host=self.endpoint, data={"limit": new_limit, "reason": reason})

    async def _release(self, lease: Lease, closing_later: bool = False) -> None:
        """Keep the connection idle, or close it: at once, or (given back by a cancelled
        task: a stop) in the background, where `Pools.close` waits for it within its
        bound, so a cancelled task never waits on a polite QUIT."""
        to_close: Connection | None = lease.connection
        if lease.reusable and lease.connection.is_usable() and not self.pools.waiting and not self._wanted_elsewhere():
            self._idle[id(lease.connection)] = (lease.identity, lease.connection)
            to_close = None
            self._idle_appeared.set()
            self._offer_idle_later()
        self._give_back_slot()
        surplus = self._evict_for_room()
        for connection in ([to_close] if to_close else []) + surplus:
            if closing_later:
                self.pools.close_later(self._close(connection, "discarded"))
            else:
                await self._close(connection, "discarded")

    def _wanted_elsewhere(self) -> bool:
        gate = self.pools.gate
        return gate is not None and gate.others_waiting(self.endpoint, self.limit)

    def _offer_idle_later(self) -> None:
        """While connections are idle here, look now and then whether another process
        waits for the leases they hold, and close them if so: nothing else here would
        (this process may have no more work for the host)."""
        if self.pools.gate is not None and self._offering is None:
            self._offering = asyncio.get_running_loop().call_later(self.pools.gate.poll[1], self._offer_idle)

    def _offer_idle(self) -> None:
        self._offering = None
        if not self._idle:
            return
        if self._wanted_elsewhere():
            while (idle := self.take_oldest_idle()) is not None:
                self.pools.close_later(self._close(idle, "closed: another process wants its lease on the host"))
        else:
            self._offer_idle_later()

    def take_oldest_idle(self) -> Connection | None:
        """An idle connection for the caller to close (another host needs its global slot)."""
        if not self._idle:
            return None
        _, (_, connection) = self._idle.popitem(last=False)
        return connection

    async def _close(self, connection: Connection, reason: str) -> None:
        try:
            with contextlib.suppress(Exception):
                await connection.close()
        finally:
            self._closed()  # only now: the bounds count connections really open
        self._events.emit("pool.close", host=self.endpoint, data={"reason": reason})

    def _closed(self) -> None:
        """A connection of this pool closed (or was never opened): its global slot and
        its lease on the host go back."""
        if self.pools.gate is not None:
            self.pools.gate.leave(self.endpoint)
        self.pools.closed()

    async def close(self) -> None:
        """Close every idle connection (at the end of a run)."""
        if self._offering is not None:
            self._offering.cancel()
            self._offering = None
        idle = [connection for _, connection in self._idle.values()]
        self._idle.clear()
        await asyncio.gather(*(self._close(connection, "run finished") for connection in idle))


class Pools:
    """The pools of a run, created on first use with the host's limit, and the run's
    global bound on open connections (None: no bound)."""

    def __init__(self, events: EventBus, max_open: int | None = None, gate: HostGate | None = None) -> None:
        self._pools: dict[str, HostPool] = {}
        self._events = events
        self.max_open = max_open
        self.gate = gate
        #: Called as an opener starts to wait for another process's lease: what this
        #: process holds that the other may wait for (the state file's write lock) goes.
        self.before_gate_wait: Callable[[], None] = lambda: None
        self.open = 0
        self.peak_open = 0
        self._openers: deque[asyncio.Future[None]] = deque()
        self._closing: set[asyncio.Task[None]] = set()

    def __repr__(self) -> str:
        return f"<Pools: {self.open} open, limit {self.max_open} | {self.waiting} waiting | {len(self._pools)} hosts>"

    @property
    def waiting(self) -> int:
        """Openers waiting for a global slot."""
        return len(self._openers)

    async def open_slot(self, opener: HostPool) -> None:
        """Take a global slot for a new connection of `opener` (closing another host's
        oldest idle connection, or waiting for a slot, when all are taken)."""
        if self.max_open is not None and self.open >= self.max_open and not self._openers:
            for pool in self._pools.values():
                idle = pool.take_oldest_idle()
                if idle is not None:
                    await pool._close(idle, "closed for another host (global bound)")
                    break
        if self.max_open is None or (self.open < self.max_open and not self._openers):
            self.open += 1
        else:
            waiter = asyncio.get_running_loop().create_future()
            self._openers.append(waiter)
            try:
                await waiter  # the closer handed its slot over (`open` unchanged)
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self.closed()  # handed a slot just as we were cancelled: pass it on
                elif waiter in self._openers:  # a closer drops cancelled waiters it meets
                    self._openers.remove(waiter)
                raise
        self.peak_open = max(self.peak_open, self.open)

    def take_free_slot(self) -> bool:
        """Take a global slot if one is free now, without waiting or closing anything."""
        if self.max_open is not None and (self.open >= self.max_open or self._openers):
            return False
        self.open += 1
        self.peak_open = max(self.peak_open, self.open)
        return True

    def drop_ahead(self) -> None:
        """Close every socket connected ahead that no session took (`FRESH` after the start)."""
        for pool in self._pools.values():
            pool.drop_ahead()

    def closed(self) -> None:
        """A connection was closed (or never opened): its slot goes to the oldest
        waiting opener, else back to the free count."""
        while self._openers:
            waiter = self._openers.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
        self.open -= 1

    def get(self, endpoint: str, limit: int, connect_timeout: float) -> HostPool:
        pool = self._pools.get(endpoint)
        if pool is None:
            pool = self._pools[endpoint] = HostPool(endpoint, limit, self._events, connect_timeout, self)
        elif limit < pool.configured_limit:
            # Two job files give one host different limits: the stricter one holds.
            pool.limit = min(pool.limit, limit)
            pool.configured_limit = limit
        return pool

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._pools.values())

    def close_later(self, closing: Coroutine[Any, Any, None]) -> None:
        """Close a connection in the background (`close` waits for it)."""
        task = asyncio.get_running_loop().create_task(closing)
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        await asyncio.gather(*(pool.close() for pool in self._pools.values()), *self._closing)
        while self._closing:  # begun meanwhile: a listing ahead cancelled as its walk ended
            await asyncio.gather(*self._closing)
