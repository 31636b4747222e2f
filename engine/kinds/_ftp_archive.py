"""`ftp.mirror`'s `archive`: the mirrored tree packed into one zip, tar.gz or tar.bz2,
written beside it and replaced only when complete. Imported only when a job archives
(tarfile and zipfile are a few ms of every start otherwise)."""

from __future__ import annotations

import os
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

from xfer.kinds._ftp_common import PART_SUFFIX


def _tree_files(root: Path) -> Iterator[tuple[Path, str]]:
    """Regular files under root in a stable order, without `.part` files or links."""
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath, name)
            if name.endswith(PART_SUFFIX) or path.is_symlink() or not path.is_file():
                continue
            yield path, path.relative_to(root).as_posix()


def write_archive(root: Path, target: Path, kind: str) -> int:
    """Pack root's files into `target` via `target.part`, replacing `target` only when
    the new archive is complete. Returns the number of files."""
    part = target.with_name(target.name + PART_SUFFIX)
    target.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    try:
        if kind == "zip":
            with zipfile.ZipFile(part, "w", zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
                for path, name in _tree_files(root):
                    archive.write(path, name)
                    count += 1
        else:
            mode = "w:gz" if kind == "tgz" else "w:bz2"
            with tarfile.open(part, mode) as archive:  # type: ignore[call-overload]
                for path, name in _tree_files(root):
                    archive.add(path, name, recursive=False)
                    count += 1
        os.replace(part, target)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return count
