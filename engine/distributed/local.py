"""`xfer run FILE --workers N` on one machine: a private redis-server on a unix socket
in a temporary directory, N `xfer worker` processes, and the coordinator in this one.

Nothing listens on TCP and the socket's directory is the user's own (mode 0700), so
the private broker needs no password; the units' key is made for this run only."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from xfer.distributed.sealing import KEY_VARIABLE
from xfer.errors import SpecError

REDIS_PACKAGE = "redis-server"
#: Set for local workers: the coordinator's pid (a worker whose parent is gone leaves).
PARENT_VARIABLE = "XFER_WORKER_PARENT"
#: Set when the broker is the coordinator's private redis-server: an orphaned worker shuts it down.
OWNS_BROKER_VARIABLE = "XFER_WORKER_OWNS_BROKER"
START_TIMEOUT = 10.0


@contextlib.contextmanager
def private_redis() -> Iterator[str]:
    """A redis-server for this run; yields its URL."""
    binary = shutil.which("redis-server") or ("/usr/bin/redis-server" if os.path.exists("/usr/bin/redis-server") else None)
    if binary is None:
        raise SpecError(f"--workers needs redis-server (Debian package {REDIS_PACKAGE}) or --broker URL")
    with tempfile.TemporaryDirectory(prefix="xfer-redis-") as folder:
        socket = Path(folder) / "redis.sock"
        server = subprocess.Popen(
            [binary, "--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "700",
             "--save", "", "--appendonly", "no", "--dir", folder, "--loglevel", "warning"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True,
        )
        try:
            deadline = time.monotonic() + START_TIMEOUT
            while not socket.exists():
                if server.poll() is not None or time.monotonic() > deadline:
                    error = server.stderr.read().decode(errors="replace").strip() if server.stderr else ""
                    raise SpecError(f"redis-server did not start: {error or 'no socket after 10 s'}")
                time.sleep(0.01)
            yield f"unix://{socket}"
        finally:
            server.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(5)
            if server.poll() is None:
                server.kill()


@contextlib.contextmanager
def local_workers(
    count: int, broker_url: str, key: str, loop: str, owns_broker: bool = False
) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`count` worker processes of this xfer, stopped when the run ends, and leaving
    by themselves (with the private broker, `owns_broker`) if this process is killed."""
    env = dict(os.environ, **{KEY_VARIABLE: key, PARENT_VARIABLE: str(os.getpid())})
    env.pop(OWNS_BROKER_VARIABLE, None)
    if owns_broker:
        env[OWNS_BROKER_VARIABLE] = "1"
    command = [sys.executable, "-m", "xfer", "worker", "--broker", broker_url, "--loop", loop]
    # Own sessions: a Ctrl-C at the terminal reaches the coordinator only, which stops
    # the units through the broker (running items get their grace period).
    workers = [subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL, start_new_session=True)
               for _ in range(count)]
    try:
        yield workers
    finally:
        for worker in workers:
            if worker.poll() is None:
                worker.terminate()
        for worker in workers:
            try:
                worker.wait(5)
            except subprocess.TimeoutExpired:
                worker.kill()
