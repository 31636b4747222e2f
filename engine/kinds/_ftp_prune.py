"""`ftp.mirror`'s `delete`: remove local files (and emptied directories) the walk of
this run did not see — in a worker thread, so other jobs keep running meanwhile.

A tree of 200,000 files took one SQLite query per file inside the event loop and
stalled every other job for the whole walk. Here the thread walks the tree bottom-up
with a read-only SQLite connection of its own (one query per directory for the names
this run saw), removes files itself, and hands its notes to the loop in batches. The
state rows of deleted files are forgotten on the loop afterwards, a batch at a time."""

from __future__ import annotations

import asyncio
import functools
import os
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from xfer.kinds._ftp_common import PART_SUFFIX, FileState
from xfer.pathsafety import is_inside

#: Notes handed from the thread to the loop at once, and rows forgotten per loop turn.
BATCH = 512

Emit = Callable[..., None]


@dataclass
class PruneRules:
    """What may be deleted: in scope, wanted by the filter, not ours, not seen."""

    root: Path
    protected: frozenset[Path]
    in_scope: Callable[[str], bool]
    wants_file: Callable[[str], bool]
    walk_dir: Callable[[str], bool]
    dry_run: bool

    @functools.cached_property
    def protected_names(self) -> frozenset[str]:
        return frozenset(path.name for path in self.protected)


@dataclass
class Pruned:
    deleted: int = 0
    forget: list[str] = field(default_factory=list)  # state rows of files now gone


class _SeenIndex:
    """The paths this run saw, read a directory at a time on the thread's own connection."""

    def __init__(self, state: FileState) -> None:
        self.where = (state.job, state.direction, state.run)
        self.db = sqlite3.connect(f"{state.store.path.resolve().as_uri()}?mode=ro", uri=True)

    def names_in(self, parent: str) -> set[str]:
        if parent:  # a range on the primary key: "parent/" <= path < "parent0"
            rows = self.db.execute(
                "SELECT path FROM ftp_files WHERE job = ? AND direction = ? AND run = ? AND path > ? AND path < ?",
                (*self.where, parent + "/", parent + "0"),
            )
        else:
            rows = self.db.execute(
                "SELECT path FROM ftp_files WHERE job = ? AND direction = ? AND run = ? AND instr(path, '/') = 0",
                self.where,
            )
        start = len(parent) + 1 if parent else 0
        return {path[start:] for (path,) in rows if "/" not in path[start:]}

    def saw(self, path: str) -> bool:
        query = "SELECT 1 FROM ftp_files WHERE job = ? AND direction = ? AND run = ? AND path = ?"
        return self.db.execute(query, (*self.where, path)).fetchone() is not None

    def close(self) -> None:
        self.db.close()


class _Notes:
    """Events from the thread, posted to the loop `BATCH` at a time (in order)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, emit: Emit) -> None:
        self.loop, self.emit = loop, emit
        self.batch: list[tuple[str, dict[str, Any]]] = []

    def add(self, name: str, **fields: Any) -> None:
        self.batch.append((name, fields))
        if len(self.batch) >= BATCH:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            self.loop.call_soon_threadsafe(functools.partial(_emit_all, self.emit, self.batch))
            self.batch = []


def _emit_all(emit: Emit, batch: list[tuple[str, dict[str, Any]]]) -> None:
    for name, fields in batch:
        emit(name, **fields)


async def delete_unseen(state: FileState, rules: PruneRules, emit: Emit) -> int:
    """Delete what this run did not see (or only note it under --dry-run); the count."""
    state.store.commit()  # this run's rows, visible to the thread's own connection
    notes = _Notes(asyncio.get_running_loop(), emit)
    pruned = await asyncio.to_thread(_prune, state, rules, notes)
    for start in range(0, len(pruned.forget), BATCH):
        for path in pruned.forget[start : start + BATCH]:
            state.forget(path)
        await asyncio.sleep(0)
    return pruned.deleted


def _prune(state: FileState, rules: PruneRules, notes: _Notes) -> Pruned:
    seen = _SeenIndex(state)
    try:
        return _walk(rules, seen, notes)
    finally:
        seen.close()
        notes.flush()


def _walk(rules: PruneRules, seen: _SeenIndex, notes: _Notes) -> Pruned:
    root, pruned = rules.root, Pruned()
    for dirpath, dirnames, filenames in os.walk(root, topdown=False):
        here = Path(dirpath)
        parent = "" if here == root else here.relative_to(root).as_posix()
        seen_here = seen.names_in(parent)
        inside = is_inside(root, here)  # never delete outside the destination, whatever the walk met
        links = [name for name in dirnames if (here / name).is_symlink()]
        for name in filenames + links:
            path = here / name
            relative = f"{parent}/{name}" if parent else name
            owner = relative[: -len(PART_SUFFIX)] if relative.endswith(PART_SUFFIX) else relative
            if (
                _protected(rules, path)
                or not rules.in_scope(owner)
                or not rules.wants_file(owner)
                or owner.rpartition("/")[2] in seen_here
            ):
                continue
            pruned.deleted += 1
            if inside and _remove(rules, notes, path, relative, "file") and owner == relative:
                pruned.forget.append(relative)
        if here == root or here.is_symlink() or not rules.in_scope(parent) or not rules.walk_dir(parent):
            continue
        if seen.saw(parent):
            continue
        if is_inside(root, here.parent) and (rules.dry_run or not any(here.iterdir())):
            _remove(rules, notes, here, parent, "dir")
    return pruned


def _protected(rules: PruneRules, path: Path) -> bool:
    """Whether `path` is one of ours (resolving only a link or a name that could be)."""
    if path.name not in rules.protected_names and not path.is_symlink():
        return False
    return Path(os.path.realpath(path)) in rules.protected


def _remove(rules: PruneRules, notes: _Notes, path: Path, relative: str, what: str) -> bool:
    """Delete one local file or empty directory (or only say so under --dry-run)."""
    if rules.dry_run:
        notes.add("job.note", data={"event": "would_delete", "path": relative, "type": what})
        return False
    try:
        if what == "dir":
            path.rmdir()
        else:
            path.unlink()
    except OSError as exc:
        notes.add("job.error", error=f"deleting {relative!r}: {exc.strerror or exc}")
        return False
    notes.add("job.note", data={"event": "deleted", "path": relative, "type": what})
    return True
