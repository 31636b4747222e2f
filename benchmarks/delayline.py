"""A userspace WAN delay line for FTP servers on loopback (kernel netem is not available here).

One listener in front of each FTP server. Every chunk read on either side is written to
the other side half a round trip later: a chunk read at t goes out at t + rtt/2 whatever
the chunks before it (the delays overlap, they do not add up), in order. The upstream
connect itself waits half a round trip too (the SYN's way), so a server's banner reaches
the client one round trip after it connected. Bandwidth is not limited.

Passive-mode replies (227 PASV, 229 EPSV) are rewritten on their way to the client: the
port they name is replaced by a new one-shot data relay, delayed the same way, in front
of the server's data port. So data connections pay the latency too.

What it counts (since the last `stats`): control connections, data connections, and
control-channel writes by the client (client->server chunks: each is at least one
request the client could not batch with the previous one), and how late chunks left.

Limits, stated: the client's own connect() to the delay line completes at once (only the
server side waits), so a client that waits for connect() before its first write gains
half a round trip per connection against a real WAN; a chunk is the unit, so a client that
writes two commands back to back in separate send() calls is counted twice; server
replies on a control connection go out as whole lines (a reply split mid-line waits for
its end, which vsftpd never does).

Run as a helper process (the benchmark talks to it over stdin/stdout):

    python benchmarks/delayline.py --rtt-ms 50 TARGET_PORT [TARGET_PORT ...]

prints one JSON line {"ports": {"TARGET_PORT": LISTEN_PORT, ...}}, then answers each
`stats` line on stdin with one JSON line of counters (and zeroes them); exits at EOF.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import socket
import sys
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import cast

HOST = "127.0.0.1"
#: Pause reading a side once this many bytes wait in the line for the other side.
HIGH_WATER = 4 << 20
#: Timers may fire this early (uvloop's clock has millisecond ticks).
EARLY = 0.0005
#: A data relay that no one connected to is closed after this long.
RELAY_IDLE = 60.0

PASV = re.compile(rb"^227 (.*?)(\d+),(\d+),(\d+),(\d+),(\d+),(\d+)(.*)$", re.DOTALL)
EPSV = re.compile(rb"^229 (.*?\(...)(\d+)(.*)$", re.DOTALL)


class Close:
    """Queued in a line after a side's last bytes: close the other side when it comes out."""


CLOSE = Close()
Chunk = bytes | Close


@dataclass
class Stats:
    """Counters since the last read; `late_*` is how long after its due time a chunk left."""

    control_connections: int = 0
    data_connections: int = 0
    control_writes: int = 0
    chunks: int = 0
    late_ms_max: float = 0.0
    late_over_5ms: int = 0

    def reset(self) -> None:
        for name, value in asdict(Stats()).items():
            setattr(self, name, value)


class Line:
    """One direction of one connection: chunks leave `delay` seconds after they came, in order.

    One timer per line, armed for the oldest chunk: delays overlap instead of adding up."""

    def __init__(self, loop: asyncio.AbstractEventLoop, delay: float, stats: Stats) -> None:
        self.loop, self.delay, self.stats = loop, delay, stats
        self.queue: deque[tuple[float, Chunk]] = deque()
        self.queued = 0
        self.timer: asyncio.TimerHandle | None = None
        self.dest: asyncio.Transport | None = None
        self.source: asyncio.Transport | None = None
        self.source_paused = False

    def push(self, chunk: Chunk) -> None:
        self.queue.append((self.loop.time() + self.delay, chunk))
        if isinstance(chunk, bytes):
            self.queued += len(chunk)
        self._arm()
        if self.source is not None and not self.source_paused and self.backlog() > HIGH_WATER:
            self.source.pause_reading()
            self.source_paused = True

    def attach(self, dest: asyncio.Transport) -> None:
        self.dest = dest
        self._arm()

    def backlog(self) -> int:
        return self.queued + (self.dest.get_write_buffer_size() if self.dest is not None else 0)

    def _arm(self) -> None:
        if self.timer is None and self.dest is not None and self.queue:
            self.timer = self.loop.call_at(self.queue[0][0], self.flush)

    def flush(self) -> None:
        self.timer = None
        now = self.loop.time()
        dest = self.dest
        assert dest is not None
        while self.queue and self.queue[0][0] <= now + EARLY:
            due, chunk = self.queue.popleft()
            late = (now - due) * 1000
            self.stats.chunks += 1
            self.stats.late_ms_max = max(self.stats.late_ms_max, round(late, 2))
            self.stats.late_over_5ms += late > 5
            if isinstance(chunk, Close):
                dest.close()  # after what it still buffers
                continue
            self.queued -= len(chunk)
            if not dest.is_closing():
                dest.write(chunk)
        self._arm()
        self.maybe_resume()

    def maybe_resume(self) -> None:
        if self.source_paused and self.source is not None and self.backlog() < HIGH_WATER // 2:
            self.source_paused = False
            self.source.resume_reading()


class Side(asyncio.Protocol):
    """One socket of a relayed connection: what it reads goes into `out` (or through
    `on_chunk` first), `into` writes to it. An EOF closes it (half-close is not relayed)."""

    transport: asyncio.Transport

    def __init__(self, out: Line, into: Line, on_chunk: Callable[[Chunk], None] | None = None) -> None:
        self.out, self.into = out, into
        self.on_chunk = on_chunk or out.push

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's transports are not subclasses
        self.out.source = self.transport
        self.into.attach(self.transport)

    def data_received(self, data: bytes) -> None:
        self.on_chunk(data)

    def resume_writing(self) -> None:
        self.into.maybe_resume()

    def connection_lost(self, exc: Exception | None) -> None:
        self.on_chunk(CLOSE)


class Link:
    """A client connection accepted by the delay line and its connection to the server."""

    def __init__(self, relay: Relay) -> None:
        self.relay = relay
        self.up = Line(relay.loop, relay.delay, relay.stats)  # client -> server
        self.down = Line(relay.loop, relay.delay, relay.stats)  # server -> client
        self.partial = b""
        control = relay.control
        self.client = Side(self.up, self.down, self.count_write if control else None)
        self.server = Side(self.down, self.up, self.rewrite if control else None)
        relay.loop.call_later(relay.delay, lambda: asyncio.ensure_future(self.connect()))  # the SYN's way

    def count_write(self, chunk: Chunk) -> None:
        if isinstance(chunk, bytes):
            self.relay.stats.control_writes += 1
        self.up.push(chunk)

    async def connect(self) -> None:
        try:
            await self.relay.loop.create_connection(lambda: self.server, self.relay.host, self.relay.port)
        except OSError:
            self.client.transport.close()

    def rewrite(self, chunk: Chunk) -> None:
        """Server -> client control bytes, whole lines only: passive replies get a relay port."""
        if isinstance(chunk, Close):
            if self.partial:
                self.down.push(self.partial)
            self.down.push(chunk)
            return
        data = self.partial + chunk
        cut = data.rfind(b"\n") + 1
        self.partial = data[cut:]
        if cut:
            lines = data[:cut].splitlines(keepends=True)
            self.down.push(b"".join(self.relay.passive(line) for line in lines))


class Relay:
    """A listener in front of host:port; `control` listeners rewrite passive replies."""

    def __init__(self, loop: asyncio.AbstractEventLoop, host: str, port: int, delay: float, stats: Stats,
                 control: bool = True) -> None:
        self.loop, self.host, self.port, self.delay, self.stats, self.control = loop, host, port, delay, stats, control
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind((HOST, 0))
        self.sock.listen(128)  # connections queue from now on, before serve() runs
        self.listen_port: int = self.sock.getsockname()[1]
        self.server: asyncio.AbstractServer | None = None

    async def serve(self) -> None:
        self.server = await self.loop.create_server(self.accept, sock=self.sock)
        if not self.control:
            self.loop.call_later(RELAY_IDLE, self.server.close)

    def accept(self) -> Side:
        if self.control:
            self.stats.control_connections += 1
        else:
            self.stats.data_connections += 1
            if self.server is not None:  # one data connection per passive reply (not from inside accept: uvloop)
                self.loop.call_soon(self.server.close)
        return Link(self).client

    def passive(self, line: bytes) -> bytes:
        """A 227/229 reply with the port of a new data relay in front of the one it named."""
        if match := PASV.match(line):
            host = ".".join(part.decode() for part in match.groups()[1:5])
            port = self.data_relay(host, int(match[6]) * 256 + int(match[7]))
            return b"227 %s127,0,0,1,%d,%d%s" % (match[1], port >> 8, port & 255, match[8])
        if match := EPSV.match(line):
            port = self.data_relay(self.host, int(match[2]))
            return b"229 %s%d%s" % (match[1], port, match[3])
        return line

    def data_relay(self, host: str, port: int) -> int:
        """Start a one-shot relay to host:port; its listening port."""
        relay = Relay(self.loop, host, port, self.delay, self.stats, control=False)
        asyncio.ensure_future(relay.serve())
        return relay.listen_port


async def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rtt-ms", type=float, default=50.0, help="round trip; each direction gets half")
    parser.add_argument("ports", type=int, nargs="+", help="FTP servers' control ports on 127.0.0.1")
    args = parser.parse_args(argv)
    loop = asyncio.get_running_loop()
    stats = Stats()
    relays = [Relay(loop, HOST, port, args.rtt_ms / 2000, stats) for port in args.ports]
    for relay in relays:
        await relay.serve()
    print(json.dumps({"ports": {str(r.port): r.listen_port for r in relays}}), flush=True)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while line := await reader.readline():
        if line.strip() == b"stats":
            print(json.dumps(asdict(stats)), flush=True)
            stats.reset()


if __name__ == "__main__":
    try:
        import uvloop

        runner = asyncio.Runner(loop_factory=uvloop.new_event_loop)
    except ImportError:
        runner = asyncio.Runner()
    with runner:
        runner.run(main())
