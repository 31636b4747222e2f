"""Settled directories: how a mirror's re-run skips what has not changed.

A directory is *settled* when a run listed it and every file it wanted from that
listing is in the local tree as recorded (up to date, or downloaded and recorded in
this run), with nothing odd in the listing (no unparsed line, unsafe name or link).
Its row in `ftp_dirs` keeps a digest of the raw listing (keyed by the job's walk
options), the subdirectories walked, and the wanted files with the size and local
mtime their `ftp_files` rows record (a copy: the row is written in the same commit as
those records, and any change to them goes through the full path, which drops it
first). On the next run a listing with the same digest is not parsed at all: each file
gets one `lstat` against its stamp (regular file, recorded size and mtime), the files
are marked seen when the job deletes (only `delete` reads this run's marks), and only
the subdirectories go on. Anything else — another digest, a file changed or gone
locally, a failed download — takes the full path, and the row is dropped until the
directory settles again. `--force` never takes the shortcut.

This is what makes a no-op re-run cost about one `lstat` per file beyond the listings,
where parsing each LIST line and comparing it with its row cost ~25 µs a file (and
reading the rows back, one query a directory, another ~3 µs a file)."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from xfer.kinds._ftp_common import FileState

_SCHEMA = """CREATE TABLE IF NOT EXISTS ftp_dirs (
    job TEXT NOT NULL,
    direction TEXT NOT NULL,
    path TEXT NOT NULL,
    digest BLOB NOT NULL,
    files TEXT NOT NULL,
    stamps TEXT NOT NULL,
    dirs TEXT NOT NULL,
    listed_files INTEGER NOT NULL,
    PRIMARY KEY (job, direction, path)
)"""
_SAVE = (
    "INSERT INTO ftp_dirs (job, direction, path, digest, files, stamps, dirs, listed_files) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (job, direction, path) DO UPDATE SET digest = excluded.digest, "
    "files = excluded.files, stamps = excluded.stamps, dirs = excluded.dirs, listed_files = excluded.listed_files"
)
_DROP = "DELETE FROM ftp_dirs WHERE job = ? AND direction = ? AND path = ?"
#: Rows by path, the paths a JSON array (one statement, an index probe per path).
_MARK_SEEN = "UPDATE ftp_files SET run = ? WHERE job = ? AND direction = ? AND path IN (SELECT value FROM json_each(?))"
#: Names are stored joined by "/", which no accepted name contains (pathsafety.check_name).
_SEP = "/"


def stamp(size: int | None, local_mtime_ns: int) -> str:
    """A file as its state row records it, in the form `lookup` compares with lstat."""
    return f"{size}:{local_mtime_ns}"


def walk_salt(*options: object) -> bytes:
    """The key for listing digests: the walk options that decide what a listing yields."""
    return hashlib.blake2b(repr(options).encode(), digest_size=32).digest()


class Settled(NamedTuple):
    """A settled directory as remembered: what the walk yields of it."""

    files: list[str]
    dirs: list[str]
    listed_files: int


class _Open:
    """A directory being walked in this run, until it settles or is spoiled."""

    __slots__ = ("digest", "files", "stamps", "dirs", "listed_files", "outstanding", "closed")

    def __init__(self, digest: bytes) -> None:
        self.digest = digest
        self.files: list[str] = []
        self.stamps: dict[str, str] = {}  # by name, once up to date or recorded
        self.dirs: list[str] = []
        self.listed_files = 0
        self.outstanding = 0  # files queued and not yet recorded
        self.closed = False  # the walk has yielded all of it


class SettledDirs:
    """The `ftp_dirs` rows of one job: `lookup` at listing time; `opened`, `wanted`,
    `listed_file`, `subdir`, `spoil`, `closed` and `recorded` while the full path runs.
    `marks_seen`: whether a skipped directory's files are marked seen in this run."""

    def __init__(self, state: FileState, local_root: str, marks_seen: bool) -> None:
        self.state = state
        self.local_root = local_root
        self.marks_seen = marks_seen
        self.skipped = 0  # files found up to date through a settled directory
        self.skipped_dirs = 0
        self._open: dict[str, _Open] = {}
        self._save: list[tuple[object, ...]] = []
        self._drop: list[tuple[str, str, str]] = []
        self._seen: list[tuple[object, ...]] = []  # directories whose files this run saw
        # Version 2 added the stamps; older rows are dropped (their directories settle again).
        state.store.ensure_schema("ftp_dirs", 2, ["DROP TABLE IF EXISTS ftp_dirs", _SCHEMA])
        state.store.on_commit(self.flush)

    def flush(self) -> None:
        db = self.state.store.db
        if self._seen:
            db.executemany(_MARK_SEEN, self._seen)
            self._seen.clear()
        if self._drop:
            db.executemany(_DROP, self._drop)
            self._drop.clear()
        if self._save:
            db.executemany(_SAVE, self._save)
            self._save.clear()

    # -- the shortcut ---------------------------------------------------------------

    def lookup(self, relative: str, digest: bytes) -> Settled | None:
        """The directory as remembered if its listing and wanted files are unchanged
        (its files are then counted, and marked seen if need be); else None, and it is
        forgotten."""
        if self._save or self._drop:
            self.state.store.commit()  # not an open transaction: see FileState.sync
        row = self.state.store.execute(
            "SELECT digest, files, stamps, dirs, listed_files FROM ftp_dirs WHERE job = ? AND direction = ? AND path = ?",
            (self.state.job, self.state.direction, relative),
        ).fetchone()
        if row is None:
            return None
        files = _split(row[1])
        if row[0] != digest or not self._files_in_place(relative, files, _split(row[2])):
            self._drop.append((self.state.job, self.state.direction, relative))
            return None
        if self.marks_seen:
            prefix = f"{relative}/" if relative else ""
            paths = json.dumps([prefix + name for name in files])
            self._seen.append((self.state.run, self.state.job, self.state.direction, paths))
        self.skipped += len(files)
        self.skipped_dirs += 1
        return Settled(files, _split(row[3]), row[4])

    def _files_in_place(self, relative: str, names: list[str], stamps: list[str]) -> bool:
        """Whether each file is a regular file of its recorded size and mtime: one
        `lstat` a file, relative to the directory (no path joined and walked per file)."""
        if not names:
            return True
        try:
            directory = os.open(os.path.join(self.local_root, relative), os.O_RDONLY | os.O_DIRECTORY)
        except OSError:
            return False
        try:
            for name, recorded in zip(names, stamps, strict=True):
                st = os.lstat(name, dir_fd=directory)
                if not stat.S_ISREG(st.st_mode) or stamp(st.st_size, st.st_mtime_ns) != recorded:
                    return False
        except (OSError, ValueError):  # ValueError: a row whose names and stamps do not pair up
            return False
        finally:
            os.close(directory)
        return True

    # -- settling on the full path ----------------------------------------------------

    def opened(self, relative: str, digest: bytes) -> None:
        self._open[relative] = _Open(digest)

    def listed_file(self, relative: str) -> None:
        if (entry := self._open.get(relative)) is not None:
            entry.listed_files += 1

    def subdir(self, relative: str, name: str) -> None:
        if (entry := self._open.get(relative)) is not None:
            entry.dirs.append(name)

    def wanted(self, parent: str, name: str, recorded: str | None) -> None:
        """A wanted file of `parent`: up to date already as `recorded` (its `stamp`),
        or None: queued for download."""
        if (entry := self._open.get(parent)) is not None:
            entry.files.append(name)
            if recorded is None:
                entry.outstanding += 1
            else:
                entry.stamps[name] = recorded

    def recorded(self, relative: str, recorded: str) -> None:
        """A queued file is downloaded and recorded as `recorded` (its `stamp`)."""
        parent, _, name = relative.rpartition("/")
        if (entry := self._open.get(parent)) is not None:
            entry.stamps[name] = recorded
            entry.outstanding -= 1
            self._settle(parent, entry)

    def spoil(self, relative: str) -> None:
        """Something in the directory needs the full path every run (or failed)."""
        self._open.pop(relative, None)

    def closed(self, relative: str) -> None:
        if (entry := self._open.get(relative)) is not None:
            entry.closed = True
            self._settle(relative, entry)

    def _settle(self, relative: str, entry: _Open) -> None:
        if entry.closed and entry.outstanding == 0:
            del self._open[relative]
            self._save.append(
                (self.state.job, self.state.direction, relative, entry.digest, _SEP.join(entry.files),
                 _SEP.join(entry.stamps[name] for name in entry.files), _SEP.join(entry.dirs), entry.listed_files)
            )


def _split(joined: str) -> list[str]:
    return joined.split(_SEP) if joined else []
