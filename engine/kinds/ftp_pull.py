"""`ftp.pull`: fetch named files, or files matching globs, from one remote
directory (optionally its subdirectories) — e.g. "the latest release":

    - name: hello-latest
      kind: ftp.pull
      remote: ftp://ftp.example.org/pub/gnu/hello/
      files: ["hello-*.tar.gz"]
      pick: newest                 # one file per pattern: the highest version
      local: downloads

`pick: newest` keeps, for each pattern in `files`, the match whose name sorts last in
version order (`hello-2.10` after `hello-2.9`), or with `pick_by: mtime` the one
changed last. Files already present with the same size and time are not fetched
again (same state and `.part`/resume rules as `ftp.mirror`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from xfer.job import Task
from xfer.kinds._ftp_common import FtpDownloadJob, WalkItem, as_utc
from xfer.kinds._pathfilter import PathFilter
from xfer.kinds._versions import version_key

if TYPE_CHECKING:
    from xfer.kinds._spec_ftp_pull import FtpPullSpec


class FtpPullJob(FtpDownloadJob):
    kind = "ftp.pull"
    spec: FtpPullSpec

    async def plan(self) -> AsyncIterator[Task[Any]]:
        spec = self.spec
        self._setup_downloads(spec.remote, spec.local, PathFilter(spec.files, spec.exclude), None if spec.recursive else 0)
        best: dict[int, WalkItem] = {}
        async for item in self.walker.items():
            if item.entry.type != "file" or not self.filter.wants_file(item.relative):
                continue
            if spec.pick == "all":
                task = self._download_task(item)
                if task is not None:
                    yield task
                continue
            pattern = self.filter.first_include(item.relative)
            if pattern is not None and (pattern not in best or self._newer(item, best[pattern])):
                best[pattern] = item
        for pattern, item in sorted(best.items()):
            self.ctx.emit("job.note", data={"event": "picked", "pattern": spec.files[pattern], "path": item.relative})
            task = self._download_task(item)
            if task is not None:
                yield task

    def _newer(self, item: WalkItem, than: WalkItem) -> bool:
        if self.spec.pick_by == "mtime" and item.entry.mtime and than.entry.mtime:
            a, b = as_utc(item.entry.mtime), as_utc(than.entry.mtime)
            if a != b:
                return a > b
        return version_key(item.entry.name) > version_key(than.entry.name)
