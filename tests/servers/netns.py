"""A test host that is not on loopback: a network namespace joined to this one by a
veth pair, with private addresses the test assigns (SERVERS.md, "namespaces").

    with netns_host() as host:              # skips when not root or without `ip`
        start a server with ["ip", "netns", "exec", host.netns, ...] on host.address
        connect to host.address from the test process

    with netns_hosts(3) as hosts:           # N namespaces, each routed to this one
        run a client with ["ip", "netns", "exec", hosts[i].netns, ...] that connects to
        a server listening on hosts[0].local (this side of the first pair): every
        namespace has a default route via its own pair, and this namespace delivers
        what is addressed to any of its own addresses locally (no forwarding)

Everything (namespace, links) is deleted on exit."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import pytest


@dataclass(frozen=True)
class NetnsHost:
    netns: str
    address: str  # the server's side, inside the namespace
    local: str  # this side


def _ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def _require() -> None:
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root")
    if shutil.which("ip") is None:
        pytest.skip("no `ip` (iproute2) to make a network namespace")


def _make(host: NetnsHost, outside: str, inside: str, route: bool) -> None:
    """The namespace, its veth pair and addresses (/30); `route`: a default route via this side."""
    _ip("netns", "add", host.netns)
    _ip("link", "add", outside, "type", "veth", "peer", "name", inside)
    _ip("link", "set", inside, "netns", host.netns)
    _ip("addr", "add", f"{host.local}/30", "dev", outside)
    _ip("link", "set", outside, "up")
    _ip("netns", "exec", host.netns, "ip", "addr", "add", f"{host.address}/30", "dev", inside)
    _ip("netns", "exec", host.netns, "ip", "link", "set", inside, "up")
    _ip("netns", "exec", host.netns, "ip", "link", "set", "lo", "up")
    if route:
        _ip("netns", "exec", host.netns, "ip", "route", "add", "default", "via", host.local)


@contextlib.contextmanager
def _namespaces(plans: Sequence[tuple[NetnsHost, str, str]], route: bool) -> Iterator[list[NetnsHost]]:
    _require()
    made: list[tuple[str, str]] = []
    try:
        for host, outside, inside in plans:
            made.append((host.netns, outside))
            _make(host, outside, inside, route)
    except subprocess.CalledProcessError as exc:
        for name, outside in made:
            _cleanup(name, outside)
        pytest.skip(f"cannot make a network namespace here: {exc.stderr.decode(errors='replace').strip()}")
    try:
        yield [host for host, _, _ in plans]
    finally:
        for name, outside in made:
            _cleanup(name, outside)


@contextlib.contextmanager
def netns_host() -> Iterator[NetnsHost]:
    tag = f"{os.getpid() % 100000}"
    octet = os.getpid() % 250 + 1
    host = NetnsHost(f"xfer-t{tag}", f"10.213.{octet}.2", f"10.213.{octet}.1")
    with _namespaces([(host, f"xt{tag}a", f"xt{tag}b")], route=False) as hosts:
        yield hosts[0]


@contextlib.contextmanager
def netns_hosts(count: int) -> Iterator[list[NetnsHost]]:
    """`count` namespaces, pair i in 10.214.<pid>.4i/30, each with a default route to this one."""
    tag = f"{os.getpid() % 100000}"
    octet = os.getpid() % 250 + 1
    plans = [(NetnsHost(f"xfer-n{tag}-{i}", f"10.214.{octet}.{4 * i + 2}", f"10.214.{octet}.{4 * i + 1}"),
              f"xn{tag}{i}a", f"xn{tag}{i}b") for i in range(count)]
    with _namespaces(plans, route=True) as hosts:
        yield hosts


def _cleanup(name: str, outside: str) -> None:
    for args in (("link", "del", outside), ("netns", "del", name)):
        with contextlib.suppress(subprocess.CalledProcessError, subprocess.TimeoutExpired):
            _ip(*args)
