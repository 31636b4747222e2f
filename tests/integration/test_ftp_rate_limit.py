"""rate_limit on a real transfer (pyftpdlib): the limit holds from the first second."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from xfer.events import EventBus
from xfer.report import Report
from xfer.scheduler import RunOptions, Scheduler
from xfer.spec import load_job_file
from tests.integration.ftp_helpers import write_jobs
from tests.servers.ftp import FtpServer, pyftpd  # noqa: F401 - fixture

RATE = 20 * 1024  # the most "20k" can mean
SIZE = 400_000


def _bytes_on_disk(root: Path) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(root) for f in files)


async def _watch(root: Path, seconds: float) -> tuple[int, int]:
    """(bytes on disk `seconds` after the first byte, the largest single step seen):
    each received block is written in one call of the event loop, and this loop
    looks between every two."""
    size, largest, started = 0, 0, None
    while started is None or time.monotonic() - started < seconds:
        await asyncio.sleep(0)
        now = _bytes_on_disk(root)
        if now > size:
            started = started or time.monotonic()
            largest, size = max(largest, now - size), now
    return size, largest


def test_small_limit_holds_in_the_first_second(pyftpd: FtpServer, tmp_path: Path) -> None:
    (pyftpd.root / "big.bin").write_bytes(os.urandom(SIZE))
    local = tmp_path / "out"
    path = write_jobs(
        tmp_path,
        f"""
defaults:
  state: {tmp_path / 'state.db'}
jobs:
  - name: slow
    kind: ftp.mirror
    remote: "{pyftpd.url('/', with_password=True)}"
    local: {local}
    rate_limit: 20k
""",
    )
    scheduler = Scheduler([load_job_file(path)], EventBus(), RunOptions(grace_period=0.2))

    async def main() -> tuple[int, int]:
        scheduler.build()
        run = asyncio.create_task(scheduler.run())
        try:
            return await _watch(local, 1.0)
        finally:
            scheduler.stop()
            await run
            scheduler.close()

    moved, block = asyncio.run(main())
    assert 0 < moved <= RATE + block, (moved, block)
