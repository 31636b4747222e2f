"""The little of a run that `ls` needs: a job file (the `--jobs` file, or one with
defaults only) for host blocks and credentials, and a few pooled connections.

`LsContext` is enough of a `JobContext` for `ftp.mirror`'s own `Walker`, so `ls`
lists a tree exactly as a mirror walks it (same commands, same name checks, same
filter on directories). Connections are kept for the whole listing, at most the
host's limit, and closed at the end; no retries: a failure is shown, not hidden."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from xfer.jobfile import JobFile
from xfer.records import Record, model_of
from xfer.urls import Url

T = TypeVar("T")


def load_file(jobs: str | None) -> JobFile:
    """The `--jobs` file (for its hosts and defaults), else a file of defaults only."""
    if jobs is not None:
        from xfer.specload import load_job_file

        return load_job_file(jobs)
    from xfer.spec import Defaults
    from xfer.specvalidate import to_record

    return JobFile(path=Path("xfer-ls"), defaults=to_record(Defaults()), hosts={}, jobs=[])


class LsContext:
    """Host settings (with `--insecure` applied), events collected as problems, and
    `with_connection` over a small pool bounded by the host's limit."""

    name = "ls"
    dry_run = True
    force = False

    def __init__(self, file: JobFile, *, insecure: bool = False) -> None:
        self.file = file
        self.insecure = insecure
        self.problems: list[str] = []
        self.errors = 0
        self._idle: dict[Any, list[Any]] = {}
        self._slots: dict[str, asyncio.Semaphore] = {}

    def host_config(self, url: Url) -> Any:
        host = self.file.host_config(url)
        if self.insecure:
            return Record(model_of(host), {**vars(host), "tls_verify": False})
        return host

    def resolve(self, path: Path | str) -> Path:
        return self.file.resolve(path)

    def emit(self, name: str, **fields: Any) -> None:
        """The walker's `job.note` and `job.error` events, as lines for stderr."""
        if name == "job.error":
            self.errors += 1
            self.problems.append(f"error: {fields.get('error')}")
        elif name == "job.note":
            data = fields.get("data", {})
            self.problems.append("note: " + ", ".join(f"{key}={value!r}" for key, value in data.items()))

    async def with_connection(self, connector: Any, action: Callable[[Any], Awaitable[T]], label: str) -> T:
        """Run `action` on an idle connection of `connector`'s identity, or a new one
        within the host's limit; a connection that broke is closed, not kept."""
        slots = self._slots.setdefault(connector.endpoint, asyncio.Semaphore(self.file.host_limit(connector.url)))
        async with slots:
            idle = self._idle.setdefault(connector.identity, [])
            conn = idle.pop() if idle else await connector.connect()
            try:
                result = await action(conn)
            finally:
                if conn.is_usable():
                    idle.append(conn)
                else:
                    await conn.close()
            return result

    async def barrier(self) -> None:
        return None

    async def close(self) -> None:
        """Close every kept connection (politely, each within its own bound)."""
        connections = [conn for idle in self._idle.values() for conn in idle]
        self._idle.clear()
        await asyncio.gather(*(conn.close() for conn in connections))
