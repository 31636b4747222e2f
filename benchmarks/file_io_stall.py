"""How long local file I/O holds the event loop, done three ways (docs/file-io.md).

A ticker task sleeps 1 ms at a time and records how late it wakes: the loop's stall.
Two workloads, each as xfer does it today and with aiofiles:

- store: messages written to a Maildir, each to tmp/, fsynced, renamed into new/
  (`MaildirStore.write`). `thread`: the whole batch in one thread (what mail.fetch
  does); `aiofiles`: open/write/flush per message through aiofiles, fsync and rename
  through aiofiles.os.wrap; `loop`: the batch on the loop (what the thread avoids).
- upload: one file read in 1 MiB blocks, as an FTP upload reads it, page cache
  dropped for the file first (posix_fadvise DONTNEED; no effect on tmpfs).
  `loop`: open/read on the loop (UploadTask today); `aiofiles`: aiofiles.open/read.

    .venv/bin/python benchmarks/file_io_stall.py /dev/shm /var/tmp --repeat 3

Prints one JSON line per (directory, workload, variant) with medians."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiofiles
import aiofiles.os

from xfer.mailbox_store.stores import Incoming, MaildirStore, to_lf

BLOCK = 1024 * 1024
_fsync = aiofiles.os.wrap(os.fsync)


async def _ticker(stalls: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await asyncio.sleep(0.001)
        stalls.append(time.perf_counter() - started - 0.001)


async def _measure(work: Callable[[], Awaitable[int]]) -> dict[str, float]:
    stalls: list[float] = []
    stop = asyncio.Event()
    ticker = asyncio.create_task(_ticker(stalls, stop))
    await asyncio.sleep(0.01)
    stalls.clear()
    started = time.perf_counter()
    nbytes = await work()
    elapsed = time.perf_counter() - started
    stop.set()
    await ticker
    stalls.sort()
    return {
        "seconds": elapsed,
        "MB_per_s": nbytes / elapsed / 1e6,
        "max_stall_ms": stalls[-1] * 1000,
        "p99_stall_ms": stalls[int(len(stalls) * 0.99)] * 1000,
    }


def _batch(count: int, size: int) -> list[Incoming]:
    body = (b"x" * 76 + b"\r\n") * (size // 78)
    return [Incoming(f"t{i}", b"Subject: m%d\r\n\r\n" % i + body) for i in range(count)]


async def _store_aiofiles(store: MaildirStore, batch: list[Incoming]) -> None:
    root = store.path
    for message in batch:
        name = store._name(message.token)
        tmp = os.path.join(root, "tmp", name)
        async with aiofiles.open(tmp, "xb") as out:
            await out.write(to_lf(message.raw))
            await out.flush()
            await _fsync(out.fileno())
        await aiofiles.os.rename(tmp, os.path.join(root, "new", name))
    fd = os.open(os.path.join(root, "new"), os.O_RDONLY)
    try:
        await _fsync(fd)
    finally:
        os.close(fd)


def store_work(directory: Path, variant: str, count: int, size: int) -> Callable[[], Awaitable[int]]:
    """The write alone is measured: the Maildir is made before, removed by the caller."""
    batch = _batch(count, size)
    total = sum(len(message.raw) for message in batch)
    root = Path(tempfile.mkdtemp(dir=directory, prefix="xfer-io-")) / "box"
    store = MaildirStore(root)

    async def work() -> int:
        if variant == "thread":
            await asyncio.to_thread(store.write, batch)
        elif variant == "loop":
            store.write(batch)
        else:
            await _store_aiofiles(store, batch)
        return total

    work.cleanup = lambda: shutil.rmtree(root.parent)  # type: ignore[attr-defined]
    return work


def upload_work(path: Path, variant: str) -> Callable[[], Awaitable[int]]:
    async def work() -> int:
        fd = os.open(path, os.O_RDONLY)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)
        total = 0
        if variant == "loop":
            with open(path, "rb") as source:
                while block := source.read(BLOCK):
                    total += len(block)
                    await asyncio.sleep(0)  # the upload awaits its socket between blocks
        else:
            async with aiofiles.open(path, "rb") as source:
                while block := await source.read(BLOCK):
                    total += len(block)
                    await asyncio.sleep(0)
        return total

    return work


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("dirs", nargs="+", type=Path)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--size", type=int, default=20_000)
    parser.add_argument("--upload-mb", type=int, default=256)
    args = parser.parse_args()
    for directory in args.dirs:
        big = directory / "xfer-io-upload.bin"
        with open(big, "wb") as out:
            for _ in range(args.upload_mb):
                out.write(os.urandom(BLOCK))
            out.flush()
            os.fsync(out.fileno())
        try:
            cases = [("store", v, lambda v=v: store_work(directory, v, args.messages, args.size)) for v in ("thread", "aiofiles", "loop")]
            cases += [("upload", v, lambda v=v: upload_work(big, v)) for v in ("loop", "aiofiles")]
            for workload, variant, make in cases:
                runs = []
                for _ in range(args.repeat):
                    work = make()
                    runs.append(asyncio.run(_measure(work)))
                    getattr(work, "cleanup", lambda: None)()
                medians = {key: round(statistics.median(run[key] for run in runs), 2) for key in runs[0]}
                print(json.dumps({"dir": str(directory), "workload": workload, "variant": variant, **medians}), flush=True)
        finally:
            big.unlink()


if __name__ == "__main__":
    main()
