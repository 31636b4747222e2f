"""What `ftp.mirror` and `ftp.pull` share at run time (their spec options are in
`engine/kinds/_spec_ftp.py`): the connector, the
state table, the remote walk, the up-to-date check and the download task.

State (`ftp_files`, one row per job, direction and relative path): the remote size
and modification time *as the server reported them* (ISO text plus its precision:
MLSD/MDTM give UTC seconds, LIST gives the server's local time to the minute or
day), the local file's mtime in ns after we wrote it, a `pending` signature of the
remote version a `.part` was started for, and the run that last saw the path. We
compare remote-now with remote-remembered (never remote with the local clock), so a
server in another time zone never makes every file look changed."""

from __future__ import annotations

import abc

import asyncio
import contextlib
import errno
import os
import posixpath
import stat
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timezone
from pathlib import Path, PurePosixPath
from typing import Any, NamedTuple

from xfer.errors import PermanentError, TransientError, UnsafePathError, describe
from xfer.job import Job, JobContext, Task, TaskContext
from xfer.pathsafety import check_name, open_new, safe_mkdir, safe_target
from xfer.protocols.ftp import FileSink, FtpConnection, FtpConnector, FtpSettings
from xfer.protocols.ftp_listing import RemoteEntry
from xfer.ratelimit import TokenBucket, consume_all, host_bucket
from xfer.kinds._pathfilter import PathFilter
from xfer.kinds._ftp_settled import SettledDirs, stamp
from xfer.urls import Url

PART_SUFFIX = ".part"
#: Local errors after which a `.part` is removed: keeping it would keep the disk full.
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})
#: Deepest directory level walked when following symlinks (they may loop).
MAX_LINK_DEPTH = 32
#: Most directories listed ahead of the walk, concurrently (each on a pooled connection;
#: a job lists ahead on one connection fewer than it may open, the walk keeps one).
LIST_AHEAD = 16

_SCHEMA = [
    """CREATE TABLE IF NOT EXISTS ftp_files (
        job TEXT NOT NULL,
        direction TEXT NOT NULL,
        path TEXT NOT NULL,
        type TEXT NOT NULL,
        size INTEGER,
        mtime TEXT,
        precision TEXT,
        local_mtime_ns INTEGER,
        pending TEXT,
        run INTEGER,
        PRIMARY KEY (job, direction, path)
    )""",
]


def make_connector(ctx: JobContext, url: Url, tls: str | None) -> FtpConnector:
    url = ctx.file.with_credentials(url)
    host = ctx.host_config(url)
    settings = FtpSettings(
        tls="none" if url.scheme == "ftp" else (tls or "explicit"),  # type: ignore[arg-type]
        tls_verify=host.tls_verify,
        ca_file=str(ctx.resolve(host.ca_file)) if host.ca_file else None,
        passive=host.passive,
        timeout=host.connect_timeout or ctx.file.defaults.connect_timeout,
    )
    return FtpConnector(url, settings)


def make_buckets(ctx: JobContext, url: Url, job_rate: int | None) -> list[TokenBucket]:
    buckets = [TokenBucket(job_rate)] if job_rate else []
    shared = host_bucket(url.endpoint, ctx.host_config(url).rate_limit)
    return buckets + ([shared] if shared else [])


def remote_join(base: str, relative: str) -> str:
    return posixpath.join(base, relative) if relative else base


# ------------------------------------------------------------------------ state


class StateRow(NamedTuple):
    type: str
    size: int | None
    mtime: str | None
    precision: str | None
    local_mtime_ns: int | None
    pending: str | None
    run: int | None


_COLUMNS = "type, size, mtime, precision, local_mtime_ns, pending, run"
_SEEN = (
    "INSERT INTO ftp_files (job, direction, path, type, run) VALUES (?, ?, ?, ?, ?) "
    "ON CONFLICT (job, direction, path) DO UPDATE SET run = excluded.run, type = excluded.type"
)
_PENDING = "UPDATE ftp_files SET pending = ? WHERE job = ? AND direction = ? AND path = ?"
_RECORD = (
    "INSERT INTO ftp_files (job, direction, path, type, size, mtime, precision, local_mtime_ns, pending, run) "
    "VALUES (?, ?, ?, 'file', ?, ?, ?, ?, NULL, ?) ON CONFLICT (job, direction, path) DO UPDATE SET "
    "type = 'file', size = excluded.size, mtime = excluded.mtime, precision = excluded.precision, "
    "local_mtime_ns = excluded.local_mtime_ns, pending = NULL, run = excluded.run"
)


class FileState:
    """The `ftp_files` rows of one job and direction; `run` marks what this run saw.

    Writes are queued and go to SQLite in batches (one executemany per statement)
    when the store commits (about once a second, and at the end), so they are exactly
    as durable as before: a kill loses the last second, which the checks against the
    local files cover. Reads flush the queue first. Rows are read a directory at a
    time (`rows_in`): one query per directory, not one per file."""

    def __init__(self, ctx: JobContext, direction: str) -> None:
        self.store = ctx.state
        self.job = ctx.name
        self.direction = direction
        self.run = time.time_ns()
        self.store.ensure_schema("ftp", 1, _SCHEMA)
        self._seen: list[tuple[Any, ...]] = []
        self._pending: list[tuple[Any, ...]] = []
        self._records: list[tuple[Any, ...]] = []
        self.store.on_commit(self.flush)

    def flush(self) -> None:
        """Write the queued rows (in this order: a pending mark needs its seen row).
        A file recorded in this batch needs neither its seen row nor its pending mark:
        its record row sets all they would (one statement a file instead of three)."""
        if self._records:
            recorded = {row[2] for row in self._records}
            self._seen = [row for row in self._seen if row[2] not in recorded]
            self._pending = [row for row in self._pending if row[3] not in recorded]
        for sql, rows in ((_SEEN, self._seen), (_PENDING, self._pending), (_RECORD, self._records)):
            if rows:
                self.store.db.executemany(sql, rows)
                rows.clear()

    def sync(self) -> None:
        """Before a read: the queued rows go to SQLite and are committed at once, not
        left in a transaction open until the next batch commit, whose lock would make
        another process sharing the state file (`xfer run --processes`) wait."""
        if self._seen or self._pending or self._records:
            self.store.commit()

    def get(self, path: str) -> StateRow | None:
        self.sync()
        row = self.store.execute(
            f"SELECT {_COLUMNS} FROM ftp_files WHERE job = ? AND direction = ? AND path = ?",
            (self.job, self.direction, path),
        ).fetchone()
        return StateRow(*row) if row else None

    def rows_in(self, parent: str) -> dict[str, StateRow]:
        """The rows of directory `parent`'s own entries (not deeper), by name."""
        self.sync()
        if parent:
            # A range on the primary key: "parent/" <= path < "parent0" ("0" follows "/").
            cursor = self.store.execute(
                f"SELECT path, {_COLUMNS} FROM ftp_files WHERE job = ? AND direction = ? AND path > ? AND path < ?",
                (self.job, self.direction, parent + "/", parent + "0"),
            )
        else:
            cursor = self.store.execute(
                f"SELECT path, {_COLUMNS} FROM ftp_files WHERE job = ? AND direction = ? AND instr(path, '/') = 0",
                (self.job, self.direction),
            )
        start = len(parent) + 1 if parent else 0
        rows = {}
        for path, *columns in cursor:
            name = path[start:]
            if "/" not in name:
                rows[name] = StateRow(*columns)
        return rows

    def seen(self, path: str, kind: str) -> None:
        self._seen.append((self.job, self.direction, path, kind, self.run))

    def set_pending(self, path: str, signature: str) -> None:
        self._pending.append((signature, self.job, self.direction, path))

    def record(self, path: str, size: int | None, mtime: str | None, precision: str | None, local_mtime_ns: int) -> None:
        self._records.append((self.job, self.direction, path, size, mtime, precision, local_mtime_ns, self.run))

    def forget(self, path: str) -> None:
        self.sync()
        self.store.execute(
            "DELETE FROM ftp_files WHERE job = ? AND direction = ? AND path = ?", (self.job, self.direction, path)
        )


# ----------------------------------------------------------------- comparisons

_PRECISION_RANK = {"second": 0, "minute": 1, "day": 2}


def _truncate(moment: datetime, precision: str) -> datetime:
    if precision == "day":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if precision == "minute":
        return moment.replace(second=0, microsecond=0)
    return moment.replace(microsecond=0)


def same_remote_time(text: str | None, precision: str | None, entry: RemoteEntry) -> bool:
    """Whether a remembered remote mtime is the entry's, at the coarser precision of
    the two (a LIST line turns from `HH:MM` to a year after six months)."""
    if text is None or entry.mtime is None:
        return text is None and entry.mtime is None
    remembered = datetime.fromisoformat(text)
    if (remembered.tzinfo is None) != (entry.mtime.tzinfo is None):
        return False  # MLSD one time, LIST the next: cannot compare, fetch again
    coarse = max(precision or "second", entry.mtime_precision or "second", key=_PRECISION_RANK.__getitem__)
    return _truncate(remembered, coarse) == _truncate(entry.mtime, coarse)


def remote_time(entry: RemoteEntry) -> str | None:
    """The entry's remote mtime as the state keeps it (ISO text). Made once per file:
    `isoformat` is 2 % of a small-file mirror's instructions, at two calls a file."""
    return entry.mtime.isoformat() if entry.mtime else None


def version_of(size: int | None, mtime_text: str | None) -> str:
    """What the state's `pending` says of the version being fetched (a resume checks it)."""
    return f"{size}|{mtime_text or ''}"


def as_utc(moment: datetime) -> datetime:
    """LIST times are naive in the server's clock; we take that clock as UTC (vsftpd and
    pyftpdlib default) when nothing better (MDTM) is available."""
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def up_to_date(row: StateRow | None, entry: RemoteEntry, local: Path | str) -> bool:
    """Whether `local` already holds `entry`'s version (no transfer needed)."""
    try:
        st = os.lstat(local)
    except OSError:
        return False
    if not stat.S_ISREG(st.st_mode):  # a directory, a symlink (never followed), ...
        return False
    if entry.size is not None and st.st_size != entry.size:
        return False
    if row is not None and row.local_mtime_ns is not None:
        return (
            (entry.size is None or row.size == entry.size)  # unknown (absurd) size: the times decide
            and same_remote_time(row.mtime, row.precision, entry)
            and row.local_mtime_ns == st.st_mtime_ns
        )
    # No record (state lost, or a tree mirrored by another tool): size and time.
    if entry.mtime is None or entry.size is None:
        return False
    local_time = datetime.fromtimestamp(st.st_mtime, timezone.utc)
    remote = as_utc(entry.mtime)
    precision = entry.mtime_precision or "second"
    return _truncate(local_time, precision) == _truncate(remote, precision)


# ------------------------------------------------------------------------ walk


class WalkItem(NamedTuple):
    relative: str  # "/"-separated, relative to the walk's root
    remote: str  # absolute remote path
    entry: RemoteEntry
    depth: int


class Walker:
    """Lists a remote tree directory by directory (depth-first, one directory in
    memory at a time, plus up to `ahead` listings fetched ahead by tasks of their
    own); yields files and directories; never holds a connection across a yield.
    Unsafe names, unlisted links and broken listing lines become `job.note`s; a
    directory that cannot be listed is a `job.error` and makes `complete` false
    (deletions then wait for a clean run)."""

    def __init__(
        self, ctx: JobContext, connector: FtpConnector, root: str, accept_dir: Callable[[str], bool],
        max_depth: int | None, symlinks: str = "skip",
    ) -> None:
        self.ctx = ctx
        self.connector = connector
        self.root = root
        self.accept_dir = accept_dir
        self.max_depth = max_depth
        self.symlinks = symlinks
        self.settled: SettledDirs | None = None  # unchanged directories skipped (engine/kinds/_ftp_settled.py)
        self.salt = b""  # keys the listing digests: the walk options
        self.ahead = 4  # listings fetched ahead at most
        self.top_files = True  # whether the top's files are this walk's (one share of a tree has them)
        self.complete = True
        self.counts = {"dirs": 0, "files": 0, "links_skipped": 0, "unsafe": 0}

    async def _list(self, remote: str) -> Any:
        return await self.ctx.with_connection(self.connector, lambda conn: conn.list_dir(remote), f"list {remote}")

    async def _resolve_link(self, remote: str, entry: RemoteEntry) -> RemoteEntry | None:
        """A followed link as what it points to: a directory, or a file with SIZE/MDTM."""

        async def probe(conn: FtpConnection) -> RemoteEntry | None:
            size, mtime = await conn.probe_file(remote)
            if size is None:
                return None
            return RemoteEntry(entry.name, "file", size, mtime, "second" if mtime else None)

        try:
            await self.ctx.with_connection(self.connector, lambda conn: conn.change_dir(remote), f"cd {remote}")
            return RemoteEntry(entry.name, "dir", None, entry.mtime, entry.mtime_precision)
        except PermanentError:
            return await self.ctx.with_connection(self.connector, probe, f"stat {remote}")

    def _note(self, **data: Any) -> None:
        self.ctx.emit("job.note", data=data)

    async def items(self) -> AsyncIterator[WalkItem]:
        stack: list[tuple[str, int]] = [("", 0)]
        ahead: dict[str, asyncio.Task[Any]] = {}  # listings started before their turn
        try:
            while stack:
                relative, depth = stack.pop()
                remote_dir = remote_join(self.root, relative)
                started = ahead.pop(relative, None)
                self._look_ahead(stack, ahead)
                try:
                    listing = await (started if started is not None else self._list(remote_dir))
                except Exception as exc:
                    if not relative:
                        raise  # the top itself: the job cannot run
                    self.complete = False
                    self.ctx.emit("job.error", error=f"listing {remote_dir!r}: {describe(exc)}")
                    continue
                self.counts["dirs"] += 1 if relative or self.top_files else 0
                settled = self.settled
                if settled is not None:
                    digest = listing.digest(self.salt)
                    known = settled.lookup(relative, digest)
                    if known is not None:
                        self.counts["files"] += known.listed_files
                        for name in known.dirs:
                            child = f"{relative}/{name}" if relative else name
                            yield WalkItem(child, remote_join(self.root, child), RemoteEntry(name, "dir", None, None, None), depth)
                            stack.append((child, depth + 1))
                        continue
                    settled.opened(relative, digest)
                for line in listing.bad_lines[:20]:
                    self._note(event="unparsed_listing_line", dir=remote_dir, line=line[:200])
                if listing.bad_lines:
                    self.complete = False  # an entry we could not read may exist remotely
                    self._spoil(relative)
                for entry in sorted(listing.entries, key=lambda e: e.name, reverse=True):
                    reason = check_name(entry.name)
                    child = f"{relative}/{entry.name}" if relative else entry.name
                    if reason is not None:
                        self.counts["unsafe"] += 1
                        self._spoil(relative)
                        self._note(event="unsafe_name", dir=remote_dir, name=entry.name, reason=reason)
                        continue
                    remote = remote_join(self.root, child)
                    if entry.type == "link":
                        self._spoil(relative)  # what a link points to can change unlisted
                        if self.symlinks == "skip" or depth >= MAX_LINK_DEPTH or self._loops(remote_dir, entry):
                            self.counts["links_skipped"] += 1
                            continue
                        resolved = await self._resolve_link(remote, entry)
                        if resolved is None:
                            self.counts["links_skipped"] += 1
                            continue
                        entry = resolved
                    if entry.type == "dir":
                        if (self.max_depth is None or depth < self.max_depth) and self.accept_dir(child):
                            if settled is not None:
                                settled.subdir(relative, entry.name)
                            yield WalkItem(child, remote, entry, depth)
                            stack.append((child, depth + 1))
                    elif entry.type == "file":
                        if depth or self.top_files:
                            self.counts["files"] += 1
                            if settled is not None:
                                settled.listed_file(relative)
                        yield WalkItem(child, remote, entry, depth)
                if settled is not None:
                    settled.closed(relative)
        finally:
            for task in ahead.values():
                task.cancel()
                if task.done() and not task.cancelled():
                    task.exception()  # retrieved: a failed listing nobody waits for any more

    def _spoil(self, relative: str) -> None:
        if self.settled is not None:
            self.settled.spoil(relative)

    def _look_ahead(self, stack: list[tuple[str, int]], ahead: dict[str, asyncio.Task[Any]]) -> None:
        """Start listing the next directories on the stack, on other pooled connections:
        round trips overlap instead of adding up (at most `self.ahead` listings held)."""
        for relative, _ in reversed(stack[-self.ahead :]):
            if relative not in ahead and len(ahead) < self.ahead:
                ahead[relative] = asyncio.ensure_future(self._list(remote_join(self.root, relative)))

    @staticmethod
    def _loops(remote_dir: str, entry: RemoteEntry) -> bool:
        """A link to the directory it sits in or to one of its ancestors."""
        if not entry.link_target:
            return False
        target = posixpath.normpath(posixpath.join(remote_dir, entry.link_target))
        return remote_dir == target or remote_dir.startswith(target.rstrip("/") + "/")


# --------------------------------------------------------------------- download


class Downloads:
    """What every download task of one job shares."""

    def __init__(
        self, local_root: Path, connector: FtpConnector, state: FileState, preserve_mtime: bool,
        buckets: list[TokenBucket],
    ) -> None:
        self.local_root = local_root
        self.connector = connector
        self.state = state
        self.preserve_mtime = preserve_mtime
        self.buckets = buckets
        self.succeeded = 0
        self.resumed = 0
        self.safe_parents: set[str] = set()
        self.settled: SettledDirs | None = None

    def target(self, relative: str) -> str:
        """Where `relative` lands. Its directory is checked (and made) by `safe_target`
        once per run: the plan checked the names, and one check per directory keeps a
        symlink planted in the destination from redirecting the writes."""
        parent = relative.rpartition("/")[0]
        if parent not in self.safe_parents:
            safe_target(self.local_root, PurePosixPath(relative), make_parents=True)
            self.safe_parents.add(parent)
        return os.path.join(self.local_root, relative)

    def make_dir(self, relative: str) -> None:
        """Make (or find) the local directory `relative`, the walk's parents first. Below
        a directory already checked, a real directory (`lstat`, no link followed) is
        inside the destination too: one syscall, not `safe_mkdir`'s resolving of every
        path component, which was a tenth of a no-op run. Anything else (a link, a file,
        an unchecked parent) gets `safe_mkdir`'s full check and its error."""
        parent = relative.rpartition("/")[0]
        if parent in self.safe_parents or not parent:
            path = os.path.join(self.local_root, relative)
            try:
                is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
            except FileNotFoundError:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(path)
                is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
            if is_dir:
                self.safe_parents.add(relative)
                return
        safe_mkdir(self.local_root, relative)
        self.safe_parents.add(relative)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


class FileTask(Task[FtpConnection]):
    """One file between the server and the local tree, labelled by its relative path.

    Under --dry-run it has no connector: the scheduler runs it without a connection
    and it only says what it would do."""

    verb = "transfer"

    def __init__(self, relative: str, size: int | None, connector: FtpConnector | None) -> None:
        self.relative = relative
        self.size = size
        self.connector = connector

    @property
    def label(self) -> str:
        return self.relative

    async def run(self, conn: FtpConnection | None, ctx: TaskContext) -> dict[str, Any]:
        if conn is None:
            return {"dry_run": f"would {self.verb}", "size": self.size}
        return await self.transfer(conn, ctx)

    @abc.abstractmethod
    async def transfer(self, conn: FtpConnection, ctx: TaskContext) -> dict[str, Any]:
        """Move the file; return details for the report."""


class DownloadTask(FileTask):
    """One remote file into `local_root/relative`: via `NAME.part`, resumed with REST
    when the server allows and the `.part` belongs to this remote version, renamed
    only when complete and of the listed size."""

    verb = "download"

    def __init__(self, shared: Downloads, item: WalkItem, relative: str, dry_run: bool) -> None:
        super().__init__(relative, item.entry.size, None if dry_run else shared.connector)
        self.shared = shared
        self.item = item

    async def transfer(self, conn: FtpConnection, ctx: TaskContext) -> dict[str, Any]:
        shared, entry = self.shared, self.item.entry
        target = shared.target(self.relative)
        part = target + PART_SUFFIX
        try:
            fd, offset = open_new(part, exclusive=True), 0  # the common case: no `.part` yet
        except FileExistsError:
            offset = self._resume_offset(conn, part)
            fd = open_new(part, append=offset > 0)
        mtime_text = remote_time(entry)
        shared.state.set_pending(self.relative, version_of(entry.size, mtime_text))
        exact: list[datetime | None] = []  # MDTM's answer, asked along with the transfer
        on_mtime = exact.append if shared.preserve_mtime and entry.mtime_precision != "second" else None
        try:
            received = await conn.retrieve(self.item.remote, self._writer(fd, ctx), offset, on_mtime)
        except OSError as exc:
            if exc.errno in _DISK_FULL:
                _unlink(part)  # give the space back to the other files
            raise
        finally:
            os.close(fd)
        total = offset + received
        if entry.size is not None and total != entry.size:
            if total > entry.size:
                _unlink(part)  # not this version: start over next time
            raise TransientError(
                f"{self.relative}: got {total} bytes, the listing said {entry.size} (file changing or server lying)"
            )
        mtime_ns = self._set_mtime(part, exact[0] if exact else None) if shared.preserve_mtime else None
        os.replace(part, target)
        if mtime_ns is None or entry.size is None:
            st = os.stat(target)
            mtime_ns, size = st.st_mtime_ns, st.st_size
        recorded_size = entry.size if entry.size is not None else size
        shared.state.record(
            self.relative,
            recorded_size,
            mtime_text,
            entry.mtime_precision,
            mtime_ns,
        )
        if shared.settled is not None:
            shared.settled.recorded(self.relative, stamp(recorded_size, mtime_ns))
        shared.succeeded += 1
        if offset:
            shared.resumed += 1
        return {"bytes": received, "resumed_from": offset} if offset else {"bytes": received}

    def _writer(self, fd: int, ctx: TaskContext) -> FileSink:
        """What each received block goes to: the file, the progress, the rate limits
        (a big plain download without limits is moved by a thread: ftp_pump)."""
        buckets = self.shared.buckets
        return FileSink(fd, ctx.progress, (lambda nbytes: consume_all(buckets, nbytes)) if buckets else None)

    def _resume_offset(self, conn: FtpConnection, part: str) -> int:
        """Where to continue a `.part`: its size, if the server has REST, the part is
        shorter than the file and no record says it was started for another version."""
        entry = self.item.entry
        try:
            st = os.lstat(part)
        except FileNotFoundError:
            return 0
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePathError(f"{part!r} is a symlink; refusing to write through it")
        row = self.shared.state.get(self.relative)
        same_version = row is None or row.pending is None or row.pending == version_of(entry.size, remote_time(entry))
        if conn.has_rest and same_version and 0 < st.st_size and (entry.size is None or st.st_size < entry.size):
            return st.st_size
        return 0

    def _set_mtime(self, part: str, exact: datetime | None) -> int | None:
        """The listing's time when exact to the second, else MDTM's (`exact`, for this
        transferred file only), else the listing's coarse one. Returns what was set (ns)."""
        entry = self.item.entry
        moment = entry.mtime if entry.mtime_precision == "second" else exact
        if moment is None and entry.mtime is not None:
            moment = entry.mtime
        if moment is not None:
            ns = int(as_utc(moment).timestamp() * 1_000_000_000)
            os.utime(part, ns=(ns, ns))
            return ns
        return None


def refuse_outside(root: Path, relative: str) -> Path | None:
    """`root/relative` if safe, else None (for checks in plan that must not raise)."""
    try:
        return safe_target(root, PurePosixPath(relative))
    except UnsafePathError:
        return None


class FtpDownloadJob(Job):
    """The download half shared by `ftp.mirror` and `ftp.pull`: the walk, the skip
    decision, the tasks and the figures for the report."""

    unit = "files"

    def _setup_downloads(
        self, url: Url, local: Path, path_filter: PathFilter, max_depth: int | None, salt: bytes | None = None,
        deletes: bool = False,
    ) -> None:
        """`salt` (the walk options, `_ftp_settled.walk_salt`) lets unchanged
        directories be skipped; without it every listing is parsed and compared.
        `deletes`: the job removes what this run did not see (skipped files count as seen)."""
        spec = self.spec
        self.url = url
        self.filter = path_filter
        self.figures = {"up_to_date": 0, "queued": 0, "refused_local": 0}
        self.local_root = self.ctx.resolve(local)
        self.state = FileState(self.ctx, "download")
        self.connector = make_connector(self.ctx, url, spec.tls)
        self.downloads = Downloads(
            self.local_root, self.connector, self.state, spec.preserve_mtime, make_buckets(self.ctx, url, spec.rate_limit)
        )
        root = posixpath.normpath(url.path or "/")
        self.walker = Walker(self.ctx, self.connector, root, path_filter.walk_dir, max_depth, spec.symlinks)
        connections = min(self.ctx.file.host_limit(url), spec.max_connections or LIST_AHEAD + 1)
        self.walker.ahead = max(1, min(LIST_AHEAD, connections - 1))
        if salt is not None and not (self.ctx.force or self.ctx.dry_run):
            self.walker.settled = self.downloads.settled = SettledDirs(self.state, str(self.local_root), deletes)
            self.walker.salt = salt
        self._checked_parent: tuple[str | None, bool] = (None, False)  # (parent, safe) for _local_path
        self._dir_rows: tuple[str | None, dict[str, StateRow]] = (None, {})  # (parent, rows) for _row
        self._dir_names: tuple[str | None, set[str]] = (None, set())  # (parent, local names) for _exists
        if not self.ctx.dry_run:
            self.local_root.mkdir(parents=True, exist_ok=True)

    def _download_task(self, item: WalkItem) -> DownloadTask | None:
        """The task for a wanted remote file, or None when it is up to date or refused."""
        self.state.seen(item.relative, "file")
        settled = self.downloads.settled
        parent, _, name = item.relative.rpartition("/")
        target = self._local_path(item.relative)
        if target is None:
            self.figures["refused_local"] += 1
            self.ctx.emit("job.note", data={"event": "unsafe_local_path", "path": item.relative})
            if settled is not None:
                settled.spoil(parent)
            return None
        exists = self._exists(item.relative)
        row = self._row(item.relative) if exists else None
        if not self.ctx.force and exists and up_to_date(row, item.entry, target):
            self.figures["up_to_date"] += 1
            if settled is not None:
                if row is None or row.local_mtime_ns is None:
                    settled.spoil(parent)  # up to date by size and time only: no stamp to check
                else:
                    settled.wanted(parent, name, stamp(row.size, row.local_mtime_ns))
            return None
        self.figures["queued"] += 1
        if settled is not None:
            settled.wanted(parent, name, None)
        return DownloadTask(self.downloads, item, item.relative, self.ctx.dry_run)

    def _row(self, relative: str) -> StateRow | None:
        """The state row of `relative`, its directory's rows read at once (the walk
        yields a directory's files together)."""
        parent, _, name = relative.rpartition("/")
        if parent != self._dir_rows[0]:
            self._dir_rows = (parent, self.state.rows_in(parent))
        return self._dir_rows[1].get(name)

    def _exists(self, relative: str) -> bool:
        """Whether the local directory has an entry of that name: one `scandir` per
        directory, so the files of a fresh mirror cost no failing `lstat` each."""
        parent, _, name = relative.rpartition("/")
        if parent != self._dir_names[0]:
            try:
                with os.scandir(os.path.join(self.local_root, parent)) as entries:
                    names = {entry.name for entry in entries}
            except OSError:
                names = set()
            self._dir_names = (parent, names)
        return name in self._dir_names[1]

    def _local_path(self, relative: str) -> str | None:
        """`local_root/relative` if safe (see `refuse_outside`). The parent directory is
        checked once per directory (the walk yields a directory's files together), then
        only the name: the full check per file was a good part of a no-op run."""
        parent, _, name = relative.rpartition("/")
        if check_name(name) is not None:
            return None
        if parent != self._checked_parent[0]:
            self._checked_parent = (parent, refuse_outside(self.local_root, relative) is not None)
        return os.path.join(self.local_root, relative) if self._checked_parent[1] else None

    def summary(self) -> dict[str, Any]:
        if not hasattr(self, "walker"):
            return {}
        settled = self.downloads.settled
        return {
            **self.walker.counts,
            **self.figures,
            "up_to_date": self.figures["up_to_date"] + (settled.skipped if settled else 0),
            "unchanged_dirs": settled.skipped_dirs if settled else 0,
            "downloaded": self.downloads.succeeded,
            "resumed": self.downloads.resumed,
            "walk_complete": self.walker.complete,
        }

    def endpoints(self) -> list[Url]:
        return [self.spec.remote]
