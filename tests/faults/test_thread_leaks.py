"""Threaded sessions (POP3, IMAP, NNTP) against a server that hangs leak nothing.

Each session runs in its own thread; a thread blocked in `recv` ends only when its
socket is shut down. 100 connects cut short by a timeout (a server that never
greets) and 100 calls cancelled mid-reply (a server that logs in, then goes
silent) must leave the thread count and the open file descriptors where they were.
The server is the FAKE in `hanging_server.py` (see its docstring for why)."""

from __future__ import annotations

import asyncio
import gc
import os
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from xfer.protocols.imap import ImapConnector
from xfer.protocols.nntp import NntpConnector
from xfer.protocols.pop3 import Pop3Connector
from xfer.spec import HostConfig
from xfer.urls import parse_url

ROUNDS = 100
SCRIPT = Path(__file__).with_name("hanging_server.py")


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def settled(baseline: tuple[int, int], deadline: float = 10.0) -> tuple[int, int]:
    """Thread and fd counts once finished threads are gone (or `deadline` passes)."""
    end = time.monotonic() + deadline
    while True:
        gc.collect()
        counts = (threading.active_count(), open_fds())
        if counts <= baseline or time.monotonic() > end:
            return counts
        time.sleep(0.05)


@pytest.fixture
def hanging() -> Iterator[Callable[[str], int]]:
    """Start the fake hanging server for a protocol; returns its port."""
    processes: list[subprocess.Popen[str]] = []

    def start(protocol: str) -> int:
        process = subprocess.Popen([sys.executable, str(SCRIPT), protocol], stdout=subprocess.PIPE, text=True)
        processes.append(process)
        assert process.stdout is not None
        return int(process.stdout.readline())

    yield start
    for process in processes:
        process.kill()
        process.wait()


def connector(protocol: str, port: int) -> Any:
    url = parse_url(f"{protocol}://user:secret@127.0.0.1:{port}/")
    if protocol == "pop3":
        return Pop3Connector(url, HostConfig())
    if protocol == "imap":
        return ImapConnector(url, HostConfig())
    return NntpConnector(url)


#: A call that the fake server never answers, per protocol.
HANGING_CALL: dict[str, Callable[[Any], Awaitable[object]]] = {
    "pop3": lambda conn: conn.inventory(),
    "imap": lambda conn: conn.search_uids(),
    "nntp": lambda conn: conn.group("fake.group"),
}


def measure(work: Callable[[], Awaitable[None]]) -> tuple[tuple[int, int], tuple[int, int]]:
    """(before, after) thread and fd counts around ROUNDS of `work` in a fresh loop."""

    async def rounds() -> None:
        for _ in range(ROUNDS):
            await work()

    gc.collect()
    before = (threading.active_count(), open_fds())
    asyncio.run(rounds())
    return before, settled(before)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("protocol", ["pop3", "imap", "nntp"])
def test_connects_cut_short_leave_no_thread_or_socket(protocol: str, hanging: Callable[[str], int]) -> None:
    port = hanging("silent")
    conn_factory = connector(protocol, port)

    async def connect_with_timeout() -> None:
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.02):
                await conn_factory.connect()

    before, after = measure(connect_with_timeout)
    assert after == before


@pytest.mark.timeout(120)
@pytest.mark.parametrize("protocol", ["pop3", "imap", "nntp"])
def test_cancelled_calls_leave_no_thread_or_socket(protocol: str, hanging: Callable[[str], int]) -> None:
    port = hanging(protocol)
    conn_factory = connector(protocol, port)

    async def cancel_a_hanging_call() -> None:
        conn = await conn_factory.connect()
        call = asyncio.ensure_future(HANGING_CALL[protocol](conn))
        await asyncio.sleep(0.01)  # the call is now blocked in its thread
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert not conn.is_usable()
        await conn.close()

    before, after = measure(cancel_a_hanging_call)
    assert after == before
