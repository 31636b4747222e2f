"""A real redis-server (Debian package redis-server) on a free loopback port, for the
distributed-run tests: started per test, stoppable and restartable mid-run, and able
to show every command it received (MONITOR) so a test can look for secrets."""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers.common import free_port, require_binary, wait_port


@dataclass
class RedisServer:
    port: int
    password: str | None
    folder: Path
    host: str = "127.0.0.1"
    binary: str = "redis-server"
    _process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def start(self) -> None:
        command = [self.binary, "--port", str(self.port), "--bind", self.host, "--save", "",
                   "--appendonly", "no", "--dir", str(self.folder), "--loglevel", "warning",
                   "--protected-mode", "no"]
        if self.password:
            command += ["--requirepass", self.password]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_port(self.port, host=self.host)

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            self._process.wait(10)
        self._process = None

    def cli(self, *args: str) -> str:
        command = ["redis-cli", "-h", self.host, "-p", str(self.port), "--no-auth-warning"]
        if self.password:
            command += ["-a", self.password]
        return subprocess.run([*command, *args], capture_output=True, text=True, timeout=30, check=True).stdout

    @contextlib.contextmanager
    def monitor(self) -> Iterator[list[str]]:
        """Every command the server receives while the block runs (lines of MONITOR)."""
        command = ["redis-cli", "-h", self.host, "-p", str(self.port), "--no-auth-warning"]
        if self.password:
            command += ["-a", self.password]
        watcher = subprocess.Popen([*command, "monitor"], stdout=subprocess.PIPE, text=True)
        lines: list[str] = []
        time.sleep(0.2)
        try:
            yield lines
        finally:
            time.sleep(0.3)
            watcher.terminate()
            out, _ = watcher.communicate(timeout=10)
            lines.extend(out.splitlines())


@contextlib.contextmanager
def redis_server(password: str | None = None, host: str = "127.0.0.1") -> Iterator[RedisServer]:
    """`host`: the address to listen on (a network namespace's peer address, say)."""
    binary = require_binary("/usr/bin/redis-server", "redis-server")
    with tempfile.TemporaryDirectory(prefix="xfer-test-redis-") as folder:
        server = RedisServer(free_port(), password, Path(folder), host=host, binary=binary)
        server.start()
        try:
            yield server
        finally:
            server.stop()
