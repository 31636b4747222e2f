"""A test host that is not on loopback: a network namespace joined to this one by a
veth pair, with private addresses the test assigns (SERVERS.md, "namespaces").

    with netns_host() as host:              # skips when not root or without `ip`
        start a server with ["ip", "netns", "exec", host.netns, ...] on host.address
        connect to host.address from the test process

Everything (namespace, links) is deleted on exit."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class NetnsHost:
    netns: str
    address: str  # the server's side, inside the namespace
    local: str  # this side


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


@contextlib.contextmanager
def netns_host() -> Iterator[NetnsHost]:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("no `ip` (iproute2) to make a network namespace")
    tag = f"{os.getpid() % 100000}"
    name, outside, inside = f"xfer-t{tag}", f"xt{tag}a", f"xt{tag}b"
    octet = os.getpid() % 250 + 1
    host = NetnsHost(name, f"10.213.{octet}.2", f"10.213.{octet}.1")
    try:
        _ip("netns", "add", name)
        _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
        _ip("link", "set", inside, "netns", name)
        _ip("addr", "add", f"{host.local}/30", "dev", outside)
        _ip("link", "set", outside, "up")
        _ip("netns", "exec", name, "ip", "addr", "add", f"{host.address}/30", "dev", inside)
        _ip("netns", "exec", name, "ip", "link", "set", inside, "up")
        _ip("netns", "exec", name, "ip", "link", "set", "lo", "up")
    except subprocess.CalledProcessError as exc:
        _cleanup(name, outside)
        pytest.skip(f"cannot make a network namespace here: {exc.stderr.decode(errors='replace').strip()}")
    try:
        yield host
    finally:
        _cleanup(name, outside)


def _cleanup(name: str, outside: str) -> None:
    for args in (("link", "del", outside), ("netns", "del", name)):
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            _ip(*args)
