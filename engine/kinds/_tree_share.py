"""`share: I/N` of an `ftp.mirror`: one part of a tree, so N runs (the processes of
`xfer run --processes`, `--workers`, or separate machines) mirror it between them.

Share I takes the top-level directories whose name hashes (CRC-32) to I, and share 1
also the files at the top. Each share walks, transfers and — with `delete` — deletes
only its part; together the shares cover the tree exactly once, whatever the names,
and the split is the same on every run (so each share's unchanged-directory records
stay valid). A tree with few top-level directories splits unevenly: the split is by
directory, never by file."""

from __future__ import annotations

import zlib

from xfer.kinds._pathfilter import PathFilter


def parse_share(text: object) -> tuple[int, int]:
    """`"I/N"` as (I, N); ValueError unless 1 <= I <= N."""
    index, slash, parts = str(text).partition("/")
    if not (slash and index.strip().isdigit() and parts.strip().isdigit()):
        raise ValueError(f"share {text!r}: write I/N, e.g. 1/2")
    share = int(index), int(parts)
    if not 1 <= share[0] <= share[1]:
        raise ValueError(f"share {text!r}: I must be between 1 and N")
    return share


class SharedFilter(PathFilter):
    """A PathFilter that also keeps to one share of the top level."""

    def __init__(self, inner: PathFilter, share: tuple[int, int]) -> None:
        self.include, self.exclude = inner.include, inner.exclude
        self.index, self.parts = share

    def _mine(self, relative: str, is_dir: bool) -> bool:
        top, below, _ = relative.partition("/")
        if not below and not is_dir:
            return self.index == 1  # a file at the top
        return zlib.crc32(top.encode("utf-8", "surrogateescape")) % self.parts == self.index - 1

    def walk_dir(self, path: str) -> bool:
        return self._mine(path, is_dir=True) and super().walk_dir(path)

    def wants_file(self, path: str) -> bool:
        return self._mine(path, is_dir=False) and super().wants_file(path)
