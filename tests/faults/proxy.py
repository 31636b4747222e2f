"""A small TCP fault proxy between xfer and a real server on loopback.

Real servers cannot be asked to drop a connection after exactly N bytes, to reset
one mid-reply, or to accept and then say nothing; this relay can. It is *not* a fake
server: every byte that gets through comes from the real server behind it.

    proxy = FaultProxy(target_port)            # plain relay
    proxy.hang = True                          # accept, never answer (timeouts)
    proxy.delay = 0.2                          # hold every server reply this long (slow server)
    proxy.faults.append(Cut(after=300_000))    # next connection: reset after 300 kB
    proxy.faults.append(Cut(after=2_000, trigger=b"OVER "))  # 2 kB into an OVER reply

A `Cut` is used by one connection, then is spent (first come, first served); a cut
resets the client side (RST, not FIN), as a crashed server or a dropped route would.

For FTP (`ftp=True`), the proxy also relays data connections: it rewrites the
server's `227`/`229` replies to point at a data relay of its own, so a `Cut` with
`data=True` cuts a transfer (RETR) rather than the control channel. xfer ignores the
address in a 227 reply (it connects to the control host), which is what we want.

Runs its own asyncio loop in a daemon thread; `close()` stops it."""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import struct
import threading
from dataclasses import dataclass, field

HOST = "127.0.0.1"

_PASV = re.compile(rb"^227 [^(\r\n]*\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)", re.M)
_EPSV = re.compile(rb"^229 [^(\r\n]*\(\|\|\|(\d+)\|\)", re.M)


@dataclass
class Cut:
    """Reset one connection after `after` bytes from the server (counted from the
    first client write containing `trigger`, when given)."""

    after: int
    trigger: bytes | None = None
    data: bool = False  # FTP: a data connection that reaches `after` bytes (never a short listing)
    fired: bool = False


@dataclass
class Stats:
    connections: int = 0
    data_connections: int = 0
    cuts: int = 0
    cut_labels: list[str] = field(default_factory=list)


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with RST: SO_LINGER 0 makes the kernel drop the connection at once."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


class FaultProxy:
    def __init__(self, target_port: int, *, ftp: bool = False, target_host: str = HOST) -> None:
        self.target = (target_host, target_port)
        self.ftp = ftp
        self.hang = False
        self.delay = 0.0
        self.faults: list[Cut] = []
        self.stats = Stats()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._hung: list[asyncio.StreamWriter] = []
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="fault-proxy", daemon=True)
        self._thread.start()
        ready.wait(10)
        self.port: int = self._server.sockets[0].getsockname()[1]

    # -- lifecycle ------------------------------------------------------------------

    def _serve(self, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._control, HOST, 0))
        ready.set()
        self._loop.run_forever()

    def close(self) -> None:
        async def stop() -> None:
            self._server.close()
            for writer in self._hung:
                writer.transport.abort()
            for task in asyncio.all_tasks():
                if task is not asyncio.current_task():
                    task.cancel()

        if self._loop.is_running():
            asyncio.run_coroutine_threadsafe(stop(), self._loop).result(10)
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- faults ----------------------------------------------------------------------

    def _take(self, *, data: bool, reached: int | None = None) -> Cut | None:
        """The first unspent fault of that sort (for data: one `reached` bytes hit)."""
        with self._lock:
            for fault in self.faults:
                if not fault.fired and fault.data == data and (reached is None or reached >= fault.after):
                    fault.fired = True
                    return fault
        return None

    # -- relaying ----------------------------------------------------------------------

    async def _control(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.stats.connections += 1
        if self.hang:
            self._hung.append(writer)  # keep it open and silent until close()
            return
        await self._relay(reader, writer)

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.target)
        except OSError:
            _reset(writer)
            return
        cut = self._take(data=False)
        state = {"armed": cut is not None and cut.trigger is None, "sent": 0}

        async def client_to_server() -> None:
            while chunk := await reader.read(65536):
                if cut is not None and cut.trigger is not None and cut.trigger in chunk:
                    state["armed"] = True
                up_writer.write(chunk)
                await up_writer.drain()
            up_writer.write_eof()

        async def server_to_client() -> None:
            while chunk := await up_reader.read(65536):
                if self.delay:
                    await asyncio.sleep(self.delay)
                if self.ftp:
                    chunk = await self._rewrite_pasv(chunk)
                if state["armed"] and cut is not None:
                    room = cut.after - state["sent"]
                    if room <= len(chunk):
                        writer.write(chunk[:room])
                        await writer.drain()
                        self.stats.cuts += 1
                        raise ConnectionAbortedError
                    state["sent"] += len(chunk)
                writer.write(chunk)
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        tasks = [asyncio.ensure_future(client_to_server()), asyncio.ensure_future(server_to_client())]
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
            failed = any(task.exception() for task in done if not task.cancelled())
            if failed:
                _reset(writer)
                up_writer.transport.abort()
            else:
                await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            for task in tasks:
                task.cancel()
            writer.close()
            up_writer.close()

    async def _rewrite_pasv(self, chunk: bytes) -> bytes:
        """Point 227/229 replies at a data relay of ours."""
        for pattern in (_PASV, _EPSV):
            match = pattern.search(chunk)
            if match is None:
                continue
            if pattern is _PASV:
                port = int(match.group(5)) * 256 + int(match.group(6))
            else:
                port = int(match.group(1))
            relay = await self._data_relay(port)
            if pattern is _PASV:
                text = b"227 Entering Passive Mode (127,0,0,1,%d,%d)" % (relay >> 8, relay & 0xFF)
            else:
                text = b"229 Entering Extended Passive Mode (|||%d|)" % relay
            chunk = chunk[: match.start()] + text + chunk[match.end() :]
        return chunk

    async def _data_relay(self, server_port: int) -> int:
        """A one-shot listener relaying to the server's passive port."""
        server: asyncio.Server | None = None

        async def accepted(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            assert server is not None
            server.close()
            self.stats.data_connections += 1
            await self._relay_data(reader, writer, server_port)

        server = await asyncio.start_server(accepted, HOST, 0)
        return server.sockets[0].getsockname()[1]

    async def _relay_data(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(HOST, port)
        except OSError:
            _reset(writer)
            return
        sent = 0
        try:
            while chunk := await up_reader.read(65536):
                cut = self._take(data=True, reached=sent + len(chunk))
                if cut is not None:
                    writer.write(chunk[: cut.after - sent])
                    await writer.drain()
                    self.stats.cuts += 1
                    _reset(writer)
                    up_writer.transport.abort()
                    return
                sent += len(chunk)
                writer.write(chunk)
                await writer.drain()
            writer.close()
        except (ConnectionError, OSError):
            _reset(writer)
        finally:
            up_writer.close()
