"""`xfer ls ftp(s)://host/path`: a directory, or a tree to a depth, as `ftp.mirror`
sees it — the mirror's own `Walker` (MLSD when offered, else LIST; unsafe names and
unparsed lines as notes; symlinks skipped or followed) and its include/exclude
filter (`PathFilter`): excluded directories are not entered, files shown only when
the mirror would take them.

Times are UTC to the second for MLSD; LIST gives the server's own clock to the
minute or day, shown as given (vsftpd and pyftpdlib use UTC)."""

from __future__ import annotations

import posixpath
from typing import Any

from xfer.kinds._ftp_common import Walker, make_connector
from xfer.kinds._pathfilter import PathFilter
from xfer.ls.context import LsContext
from xfer.ls.listing import Listing
from xfer.protocols.ftp_listing import Listing as DirListing
from xfer.urls import Url

COLUMNS = ("type", "size", "mtime", "path")


class _LsWalker(Walker):
    """The mirror's walk, one level deeper than asked, where the deepest directories
    are shown without being listed (as `ls` shows a directory it does not enter)."""

    shown_depth: int | None = None

    async def _list(self, remote: str) -> Any:
        below = posixpath.relpath(remote, self.root)
        depth = 0 if below == "." else below.count("/") + 1
        if self.shown_depth is not None and depth > self.shown_depth:
            return DirListing()
        return await super()._list(remote)


def _row(relative: str, entry: Any) -> dict[str, Any]:
    return {
        "type": entry.type,
        "size": entry.size if entry.type == "file" else None,
        "mtime": entry.mtime.isoformat() if entry.mtime else None,
        "precision": entry.mtime_precision,
        "path": relative + ("/" if entry.type == "dir" else ""),
    }


async def list_ftp(
    ctx: LsContext,
    url: Url,
    *,
    depth: int | None,
    include: list[str],
    exclude: list[str],
    symlinks: str = "skip",
    tls: str | None = None,
) -> Listing:
    """Entries below `url` down to `depth` levels (0: the directory alone, None: all)."""
    path_filter = PathFilter(include, exclude)
    connector = make_connector(ctx, url, tls)  # type: ignore[arg-type]
    root = posixpath.normpath(url.path or "/")
    walker = _LsWalker(ctx, connector, root, path_filter.walk_dir, None if depth is None else depth + 1, symlinks)  # type: ignore[arg-type]
    walker.shown_depth = depth
    listing = Listing(COLUMNS)
    async for item in walker.items():
        if item.entry.type == "dir" or path_filter.wants_file(item.relative):
            listing.rows.append(_row(item.relative, item.entry))
    listing.rows.sort(key=lambda row: row["path"])
    skipped = walker.counts["links_skipped"]
    if skipped:
        ctx.problems.append(f"note: {skipped} symlink(s) not shown (the mirror skips them; --symlinks follow)")
    listing.incomplete = not walker.complete
    return listing
