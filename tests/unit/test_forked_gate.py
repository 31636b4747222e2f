"""The forked run's gate (engine/forked_gate.py): a host's limit and the global bound
held across processes, with fair shares when one process waits for another."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import fcntl
import mmap
import os
import random
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from xfer.forked_gate import SharedHostGate

HOST, OTHER = "h:21", "other:21"


def processes(count: int, max_open: int = 64, expect: dict[str, list[int]] | None = None) -> list[SharedHostGate]:
    """The gate as each of `count` processes sees it (one table; here in one process),
    `expect`ing the processes the plan dealt each endpoint to, as the parent does."""
    gate = SharedHostGate(count, max_open)
    for endpoint, columns in (expect or {}).items():
        gate.expect(endpoint, columns)
    views = [copy.copy(gate) for _ in range(count)]
    for column, view in enumerate(views):
        view.join(column)
    return views


def enter(gate: SharedHostGate, endpoint: str = HOST, limit: int = 4) -> bool:
    return asyncio.run(gate.try_enter(endpoint, limit))


def test_a_hosts_limit_holds_across_processes_and_a_lease_given_back_is_free() -> None:
    a, b = processes(2)
    assert [enter(a, limit=3) for _ in range(3)] == [True, True, True]
    assert not enter(b, limit=3)
    assert enter(b, OTHER, limit=3)  # another host has its own limit
    a.leave(HOST)
    assert enter(b, limit=3)


def test_the_global_bound_holds_across_processes_and_hosts() -> None:
    a, b = processes(2, max_open=2)
    assert enter(a, HOST) and enter(b, OTHER)
    assert not enter(a, "third:21") and not enter(b, HOST)
    b.leave(OTHER)
    assert enter(a, "third:21")


def test_a_process_over_its_share_hands_over_while_another_waits() -> None:
    a, b = processes(2)
    assert all(enter(a) for _ in range(4))
    assert not a.over_share(HOST, 4) and not a.others_waiting(HOST, 4)  # nobody waits: keep them all
    assert not enter(b)
    b.waiting(HOST, 1)
    assert a.others_waiting(HOST, 4) and a.over_share(HOST, 4)  # 4 held, share 2
    a.leave(HOST)
    assert a.over_share(HOST, 4)
    assert enter(b)
    b.waiting(HOST, 1)  # b wants another
    a.leave(HOST)
    assert not a.over_share(HOST, 4)  # a is down to its share
    assert not enter(a)  # and takes no more while b waits, though one is free
    assert enter(b)
    b.waiting(HOST, 0)
    a.leave(HOST)
    assert enter(a)  # nobody waits: a may take beyond its share again


def test_a_process_dealt_a_host_waits_for_it_from_the_fork_until_it_had_its_share() -> None:
    """The process that starts first no longer takes the whole limit before the other
    has asked, nor what is free between two of the other's first openers."""
    a, b = processes(2, expect={HOST: [0, 1]})
    assert [enter(a, limit=8) for _ in range(5)] == [True] * 4 + [False]  # b has not asked yet
    assert enter(b, limit=8)
    b.waiting(HOST, 0)  # its first opener has its lease; the next has not asked yet
    assert not enter(a, limit=8)
    assert all(enter(b, limit=8) for _ in range(3))  # b has had its share: from now on it
    b.waiting(HOST, 0)  # counts as waiting only while it does
    b.leave(HOST)
    assert enter(a, limit=8)  # what b leaves is a's to use


def test_a_process_that_closes_a_connection_wanted_no_more_than_it_had() -> None:
    a, b = processes(2, expect={HOST: [0, 1]})
    assert all(enter(a, limit=8) for _ in range(4))
    assert enter(b, limit=8)
    b.leave(HOST)
    assert [enter(a, limit=8) for _ in range(5)] == [True] * 4 + [False]


def test_a_process_that_wants_less_than_its_share_stops_waiting_once_it_settled() -> None:
    a, b = processes(2, expect={HOST: [0, 1]})
    for view in (a, b):
        view.settle = 0.05

    async def run() -> list[bool]:
        assert await b.try_enter(HOST, 8)  # b's one lease: it wants no more
        b.waiting(HOST, 0)
        capped = [await a.try_enter(HOST, 8) for _ in range(5)]
        await asyncio.sleep(0.1)
        return capped + [await a.try_enter(HOST, 8) for _ in range(4)]

    assert asyncio.run(run()) == [True] * 4 + [False] + [True] * 3 + [False]


def test_a_process_dealt_a_host_waits_for_the_global_bound_from_the_fork() -> None:
    a, b = processes(2, max_open=4, expect={HOST: [0, 1]})
    assert [enter(a, OTHER, limit=8) for _ in range(3)] == [True, True, False]
    assert enter(b, limit=8)
    b.leave(HOST)
    assert [enter(a, OTHER, limit=8) for _ in range(3)] == [True, True, False]


def test_a_refusal_shrinks_the_limit_for_every_process() -> None:
    a, b = processes(2)
    assert all(enter(a) for _ in range(3))
    b.shrink(HOST)  # 3 open: the server took 2 at most
    a.leave(HOST)
    assert not enter(b)
    a.leave(HOST)
    assert enter(b)


def test_a_process_that_ended_gives_back_what_it_held() -> None:
    a, b = processes(2)
    assert all(enter(a) for _ in range(4))
    a.waiting(HOST, 3)
    assert not enter(b)
    gate = copy.copy(a)  # the parent's
    gate.forget(0)
    assert all(enter(b) for _ in range(4))
    assert not b.others_waiting(HOST, 4)


def test_many_endpoints_each_get_a_row_of_their_own() -> None:
    a, b = processes(2, max_open=1000)
    for n in range(300):
        assert enter(a, f"host{n}:21", limit=1)
    assert not any(enter(b, f"host{n}:21", limit=1) for n in range(300))


@contextlib.contextmanager
def locked(file: Any) -> Iterator[None]:
    fcntl.lockf(file, fcntl.LOCK_EX)
    try:
        yield
    finally:
        fcntl.lockf(file, fcntl.LOCK_UN)


def test_forked_processes_hammering_one_host_never_hold_more_than_its_limit() -> None:
    gate = SharedHostGate(4, 64)
    counts = tempfile.TemporaryFile()  # [holders now, most seen], under a lock of its own
    counts.truncate(16)
    view = memoryview(mmap.mmap(counts.fileno(), 16)).cast("q")
    children = []
    for column in range(4):
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                gate.join(column)
                rng = random.Random(column)
                deadline = time.monotonic() + 0.5
                while time.monotonic() < deadline:
                    if asyncio.run(gate.try_enter(HOST, 3)):
                        with locked(counts):
                            view[0] += 1
                            view[1] = max(view[1], view[0])
                        time.sleep(rng.random() / 1000)
                        with locked(counts):
                            view[0] -= 1
                        gate.leave(HOST)
                code = 0
            finally:
                os._exit(code)
        children.append(pid)
    assert all(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0 for pid in children)
    assert view[1] == 3  # reached, never passed
