"""`ftp.mirror`: keep a local tree equal to a remote FTP/FTPS tree (or, with
`direction: upload`, a remote tree equal to a local one).

    - name: gnu
      kind: ftp.mirror
      remote: ftp://ftp.example.org/pub/gnu/hello/
      local: mirror/hello          # relative to the job file
      include: ["*.tar.gz", "*.sig"]
      exclude: ["old/"]
      delete: true                 # remove local files gone from the server

Listing and transferring overlap: the remote tree is walked directory by directory
while the files found so far download on other pooled connections. A file whose size
and modification time match what the state remembers (and the local file) is not
fetched again; `--force` fetches everything. Pattern rules: engine/kinds/_pathfilter.py.

`delete` and `archive` act in `finish()`, only after a walk without listing errors
(and, for the archive, without failed transfers), so a bad run never removes local
files or replaces a good archive."""

from __future__ import annotations

import asyncio
import os
import posixpath
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xfer.errors import PermanentError, TransientError, UnsafePathError, describe
from xfer.job import Task, TaskContext
from xfer.kinds._ftp_common import (
    PART_SUFFIX,
    FileState,
    FileTask,
    FtpDownloadJob,
    make_buckets,
    make_connector,
    remote_join,
)
from xfer.kinds._ftp_settled import walk_salt
from xfer.kinds._pathfilter import PathFilter
from xfer.kinds._tree_share import SharedFilter
from xfer.pathsafety import check_name, is_inside
from xfer.protocols.ftp import BLOCK_SIZE, FtpConnection, FtpConnector
from xfer.ratelimit import TokenBucket, consume_all

if TYPE_CHECKING:
    from xfer.kinds._spec_ftp_mirror import FtpMirrorSpec

_ARCHIVE_SUFFIX = {"zip": ".zip", "tgz": ".tar.gz", "tbz2": ".tar.bz2"}


def depth_limit(spec: FtpMirrorSpec) -> int | None:
    """Directory levels walked below the top (None: all; `recursive: false`: 0)."""
    return spec.max_depth if spec.recursive else 0


class FtpMirrorJob(FtpDownloadJob):
    kind = "ftp.mirror"
    spec: FtpMirrorSpec

    def plan(self) -> AsyncIterator[Task[Any]]:
        if self.spec.direction == "upload":
            return self._plan_upload()
        return self._plan_download()

    async def _plan_download(self) -> AsyncIterator[Task[Any]]:
        spec = self.spec
        depth = depth_limit(spec)
        salt = walk_salt("download", spec.include, spec.exclude, depth, spec.symlinks, spec.share)
        self._setup_downloads(spec.remote, spec.local, self._filter(), depth, salt, spec.delete)
        self.walker.top_files = spec.share is None or spec.share[0] == 1
        async for item in self.walker.items():
            if item.entry.type == "dir":
                self.state.seen(item.relative, "dir")
                if not self.ctx.dry_run:
                    try:
                        self.downloads.make_dir(item.relative)
                    except (UnsafePathError, OSError) as exc:
                        # Its files will be refused one by one; the rest goes on.
                        self._note(event="unsafe_local_path", path=item.relative, reason=describe(exc))
                continue
            if self.filter.wants_file(item.relative):
                task = self._download_task(item)
                if task is not None:
                    yield task

    def _filter(self) -> PathFilter:
        """The include/exclude patterns, and the share of the tree when the job has one."""
        patterns = PathFilter(self.spec.include, self.spec.exclude)
        return SharedFilter(patterns, self.spec.share) if self.spec.share else patterns

    # -- finish: delete, archive -------------------------------------------------

    async def finish(self) -> None:
        if self.spec.direction == "upload":
            return
        if not self.walker.complete:
            if self.spec.delete or self.spec.archive:
                self._note(event="finish_skipped", reason="the remote walk had errors: no deletion, no new archive")
            return
        if self.spec.delete:
            await self._delete_unseen()
        if self.spec.archive:
            failed = self.figures["queued"] - self.downloads.succeeded
            if failed and not self.ctx.dry_run:
                self._note(event="archive_skipped", reason=f"{failed} file(s) failed to download")
            else:
                await self._write_archive()

    def _note(self, **data: Any) -> None:
        self.ctx.emit("job.note", data=data)

    def _protected(self) -> set[Path]:
        """Local files that are ours, not the mirror's (state with SQLite's own files, archive)."""
        state = str(self.ctx.file.state_path)
        paths = [state, *(state + suffix for suffix in ("-wal", "-shm", "-journal"))]
        if self.spec.archive:
            paths.append(str(self._archive_path()))
        return {Path(os.path.realpath(path)) for path in paths}

    def _in_scope(self, relative: str) -> bool:
        """Whether the walk covered `relative` (a depth limit leaves deeper files alone)."""
        limit = depth_limit(self.spec)
        return limit is None or relative.count("/") <= limit

    async def _delete_unseen(self) -> None:
        """Remove local files (and emptied directories) the walk did not see, off the
        event loop (engine/kinds/_ftp_prune.py, imported only by a mirror that deletes)."""
        from xfer.kinds._ftp_prune import PruneRules, delete_unseen

        rules = PruneRules(
            root=self.local_root,
            protected=frozenset(self._protected()),
            in_scope=self._in_scope,
            wants_file=self.filter.wants_file,
            walk_dir=self.filter.walk_dir,
            dry_run=self.ctx.dry_run,
        )
        self.figures["deleted"] = await delete_unseen(self.state, rules, self.ctx.emit)

    def _archive_path(self) -> Path:
        if self.spec.archive_path is not None:
            return self.ctx.resolve(self.spec.archive_path)
        suffix = _ARCHIVE_SUFFIX[self.spec.archive or "zip"]
        return self.local_root.with_name(self.local_root.name + suffix)

    async def _write_archive(self) -> None:
        target = self._archive_path()
        if is_inside(self.local_root, target):
            raise PermanentError(f"archive_path {str(target)!r} is inside the mirrored tree")
        if self.ctx.dry_run:
            self._note(event="would_archive", path=str(target))
            return
        from xfer.kinds._ftp_archive import write_archive  # tarfile and zipfile: only when archiving

        count = await asyncio.to_thread(write_archive, self.local_root, target, self.spec.archive or "zip")
        self.figures["archived_files"] = count
        self._note(event="archived", path=str(target), files=count)

    # -- upload --------------------------------------------------------------------

    async def _plan_upload(self) -> AsyncIterator[Task[Any]]:
        spec = self.spec
        self.local_root = self.ctx.resolve(spec.local)
        if not self.local_root.is_dir():
            raise PermanentError(f"local: {str(self.local_root)!r} is not a directory")
        self.filter = PathFilter(spec.include, spec.exclude)
        self.state = FileState(self.ctx, "upload")
        connector = make_connector(self.ctx, spec.remote, spec.tls)
        self.uploads = Uploads(
            connector,
            self.state,
            posixpath.normpath(spec.remote.path or "/"),
            spec.atomic_upload,
            make_buckets(self.ctx, spec.remote, spec.rate_limit),
        )
        self.figures = {"files": 0, "up_to_date": 0, "queued": 0, "refused_local": 0}
        for relative, path, st in self._local_files():
            self.figures["files"] += 1
            row = self.state.get(relative)
            if not self.ctx.force and row and row.size == st.st_size and row.local_mtime_ns == st.st_mtime_ns:
                self.figures["up_to_date"] += 1
                continue
            self.figures["queued"] += 1
            yield UploadTask(self.uploads, relative, path, st, self.ctx.dry_run)

    def _local_files(self) -> Iterator[tuple[str, Path, os.stat_result]]:
        """Wanted local files, depth-first, one directory in memory at a time."""
        follow = self.spec.symlinks == "follow"
        limit = depth_limit(self.spec)
        visited: set[tuple[int, int]] = set()
        stack: list[tuple[str, int]] = [("", 0)]
        while stack:
            relative, depth = stack.pop()
            directory = self.local_root / relative if relative else self.local_root
            st = directory.stat()
            if (st.st_dev, st.st_ino) in visited:
                continue  # a followed link back into the tree
            visited.add((st.st_dev, st.st_ino))
            with os.scandir(directory) as scan:
                entries = sorted(scan, key=lambda entry: entry.name, reverse=True)
            for entry in entries:
                child = f"{relative}/{entry.name}" if relative else entry.name
                reason = check_name(entry.name)
                if reason is not None:
                    self.figures["refused_local"] += 1
                    self._note(event="unsafe_name", path=child, reason=reason)
                    continue
                if entry.is_symlink() and not follow:
                    continue
                try:
                    is_dir = entry.is_dir()
                    is_file = entry.is_file()
                except OSError:
                    continue
                if is_dir:
                    if (limit is None or depth < limit) and self.filter.walk_dir(child):
                        stack.append((child, depth + 1))
                elif is_file and self.filter.wants_file(child) and not entry.name.endswith(PART_SUFFIX):
                    yield child, Path(entry.path), entry.stat()

    def summary(self) -> dict[str, Any]:
        if self.spec.direction == "upload":
            if not hasattr(self, "uploads"):
                return {}
            return {**self.figures, "uploaded": self.uploads.succeeded}
        return super().summary()


# ------------------------------------------------------------------------ upload


class Uploads:
    """What every upload task of one job shares."""

    def __init__(self, connector: FtpConnector, state: FileState, remote_root: str, atomic: bool, buckets: list[TokenBucket]) -> None:
        self.connector = connector
        self.state = state
        self.remote_root = remote_root
        self.atomic = atomic
        self.buckets = buckets
        self.made_dirs: set[str] = set()
        self.succeeded = 0


class UploadTask(FileTask):
    """One local file to `remote_root/relative`: STOR to `NAME.part`, then RNFR/RNTO,
    so the server never shows a half-uploaded file under its final name."""

    verb = "upload"

    def __init__(self, shared: Uploads, relative: str, path: Path, st: os.stat_result, dry_run: bool) -> None:
        super().__init__(relative, st.st_size, None if dry_run else shared.connector)
        self.shared = shared
        self.path = path
        self.stat = st

    async def transfer(self, conn: FtpConnection, ctx: TaskContext) -> dict[str, Any]:
        shared = self.shared
        await self._make_parents(conn)
        final = remote_join(shared.remote_root, self.relative)
        temporary = final + PART_SUFFIX if shared.atomic else final
        sent = await conn.store(temporary, self._blocks(ctx))
        if sent != self.stat.st_size:
            raise TransientError(f"{self.relative}: the local file changed while uploading")
        if shared.atomic:
            await conn.rename(temporary, final)
        shared.state.record(self.relative, sent, None, None, self.stat.st_mtime_ns)
        shared.succeeded += 1
        return {"bytes": sent}

    async def _make_parents(self, conn: FtpConnection) -> None:
        parts = self.relative.split("/")[:-1]
        for index in range(len(parts) + 1):
            directory = remote_join(self.shared.remote_root, "/".join(parts[:index]))
            if directory not in self.shared.made_dirs:
                await conn.make_dir(directory)
                self.shared.made_dirs.add(directory)

    async def _blocks(self, ctx: TaskContext) -> AsyncIterator[bytes]:
        with open(self.path, "rb") as source:
            while block := source.read(BLOCK_SIZE):
                ctx.progress(len(block))
                if self.shared.buckets:
                    await consume_all(self.shared.buckets, len(block))
                yield block
