"""`xfer ls nntp(s)://host[/pattern]`: the groups a server carries (LIST ACTIVE with
a wildmat pattern, `*` when none), with their low and high article numbers.

`count` is high - low + 1, the most articles the group can hold: LIST ACTIVE says
no more (a GROUP per group would, at a round trip each, and its count is an
estimate too)."""

from __future__ import annotations

from xfer.ls.context import LsContext
from xfer.ls.listing import Listing
from xfer.protocols.nntp import NntpConnection, NntpConnector
from xfer.urls import Url

COLUMNS = ("group", "low", "high", "count", "flag")


async def list_news(ctx: LsContext, url: Url) -> Listing:
    pattern = url.path.strip("/") or "*"
    connector = NntpConnector(url, ctx.host_config(url))

    async def active(conn: NntpConnection) -> Listing:
        groups = await conn.list_active(pattern)
        rows = [
            {"group": g.name, "low": g.first, "high": g.last, "count": max(0, g.last - g.first + 1), "flag": g.flag}
            for g in sorted(groups, key=lambda g: g.name)
        ]
        return Listing(COLUMNS, rows)

    return await ctx.with_connection(connector, active, f"LIST ACTIVE {pattern}")
