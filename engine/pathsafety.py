"""Placing server-supplied names under a local destination without ever leaving it.

A remote server (FTP listing, mail attachment, ...) chooses names; it must never
choose where a file lands outside the destination. Two layers:

- `check_name` / `safe_relative` refuse names that could climb or hide: empty, `.`,
  `..`, absolute, containing `/` (in a single component), `\\`, NUL, CR or LF;
- `safe_target` resolves the parent directory on disk (following any local
  symlinks) and refuses it unless it is still inside the destination, so a symlink
  planted in the destination cannot redirect writes elsewhere.

`open_new` opens a file without following a symlink at its own name."""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from xfer.errors import UnsafePathError

_FORBIDDEN_CHARS = {"\0": "NUL", "\r": "CR", "\n": "LF", "\\": "backslash", "/": "slash"}


#: Any character `check_name` refuses: one regex search clears an ordinary name (the
#: per-character checks below run only to say why a name is refused).
_SUSPECT = re.compile(r"[\x00-\x1f\x7f/\\\udc80-\udcff]")


def check_name(name: str) -> str | None:
    """Why `name` is not acceptable as one path component, or None when it is."""
    if _SUSPECT.search(name) is None and name not in ("", ".", ".."):
        return None
    if name in ("", ".", ".."):
        return f"reserved name {name!r}"
    for char, what in _FORBIDDEN_CHARS.items():
        if char in name:
            return f"name contains {what}"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in name):
        return "name contains a control character"
    if any(0xDC80 <= ord(char) <= 0xDCFF for char in name):
        return "name is not valid UTF-8"
    return None


def safe_relative(parts: Iterable[str] | str) -> PurePosixPath:
    """A relative path from components (or a `/`-separated string), each checked.

    Raises UnsafePathError naming the offending component (shown with repr, so a
    newline or NUL cannot forge a log line)."""
    if isinstance(parts, str):
        if parts.startswith("/"):
            raise UnsafePathError(f"absolute path {parts!r} refused")
        parts = parts.split("/")
    checked = []
    for part in parts:
        reason = check_name(part)
        if reason is not None:
            raise UnsafePathError(f"unsafe name {part!r}: {reason}")
        checked.append(part)
    if not checked:
        raise UnsafePathError("empty path refused")
    return PurePosixPath(*checked)


def is_inside(root: Path, path: Path) -> bool:
    """Whether `path` (resolved) is `root` (resolved) or below it."""
    return Path(os.path.realpath(path)).is_relative_to(os.path.realpath(root))


def safe_target(root: Path, relative: PurePosixPath | str, *, make_parents: bool = False) -> Path:
    """`root/relative`, after checking every component and that no local symlink on
    the way leads outside `root`. With make_parents, missing parent directories are
    created one by one, each checked before the next is made.

    Cheap on the common path: one lstat per component; only symlinks are resolved."""
    rel = safe_relative(str(relative))
    current = Path(root)
    if make_parents:
        current.mkdir(parents=True, exist_ok=True)
    for part in rel.parts[:-1]:
        current = current / part
        try:
            mode = os.lstat(current).st_mode
        except FileNotFoundError:
            if not make_parents:
                break  # nothing below exists yet: nothing can lead out
            try:
                os.mkdir(current)
                continue
            except FileExistsError:
                mode = os.lstat(current).st_mode
        if stat.S_ISLNK(mode) and not is_inside(root, current):
            raise UnsafePathError(f"{str(rel)!r}: {str(current)!r} is a symlink leading outside the destination")
    return Path(root, *rel.parts)


def safe_mkdir(root: Path, relative: PurePosixPath | str) -> Path:
    """Create directory `root/relative` (and its parents) with the checks of `safe_target`."""
    target = safe_target(root, relative, make_parents=True)
    try:
        target.mkdir()
    except FileExistsError:
        pass
    if not is_inside(root, target) or not target.is_dir():
        raise UnsafePathError(f"{str(relative)!r} is not a directory inside the destination")
    return target


def open_new(path: Path | str, *, append: bool = False, exclusive: bool = False) -> int:
    """An fd for writing `path`, refusing to follow a symlink at `path` itself.
    `exclusive`: only if nothing is there yet (FileExistsError otherwise, links included)."""
    flags = os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= os.O_EXCL if exclusive else os.O_APPEND if append else os.O_TRUNC
    try:
        return os.open(path, flags, 0o644)
    except OSError as exc:
        if exclusive and isinstance(exc, FileExistsError):
            raise
        if os.path.islink(path):
            raise UnsafePathError(f"{str(path)!r} is a symlink; refusing to write through it") from None
        raise exc
