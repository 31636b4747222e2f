"""Helpers shared by the server fixtures: free ports, waiting for a port, and the
skip-or-fail rule for servers that are not installed."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import time
from pathlib import Path

import pytest

REQUIRE_SERVERS = os.environ.get("XFER_REQUIRE_SERVERS") == "1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    return free_ports(1)[0]


def free_ports(count: int) -> list[int]:
    """`count` different free ports: each is held while the next is picked (ports
    picked one after the other can repeat: CI once gave Dovecot the same port for two
    listeners, "duplicate listener")."""
    with contextlib.ExitStack() as held:
        ports = []
        for _ in range(count):
            sock = held.enter_context(socket.socket())
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
        return ports


def wait_port(port: int, timeout: float = 15.0, host: str = "127.0.0.1") -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on {host}:{port} after {timeout}s")
            time.sleep(0.02)


def require_binary(path: str, package: str) -> str:
    """The path of a server binary, or skip the test (fail under XFER_REQUIRE_SERVERS=1)."""
    found = path if Path(path).exists() else shutil.which(path)
    if found:
        return found
    message = (
        f"{path} not found: install the Debian package {package} "
        f"(bash .ci/install-servers.sh as root)"
    )
    if REQUIRE_SERVERS:
        pytest.fail(message + " — XFER_REQUIRE_SERVERS=1 makes this a failure")
    pytest.skip(message)


def require_root(what: str) -> None:
    """Skip (or fail under XFER_REQUIRE_SERVERS=1) when not root."""
    if os.geteuid() == 0:
        return
    message = f"{what} needs root"
    if REQUIRE_SERVERS:
        pytest.fail(message)
    pytest.skip(message)
