"""`xfer ls imap(s)://user@host`: the selectable folders with their message counts
and total sizes; `xfer ls pop3(s)://user@host`: the maildrop's count and size (STAT).

IMAP sizes come from STATUS (MESSAGES SIZE) where the server has STATUS=SIZE
(RFC 8438), else from EXAMINE and FETCH 1:* RFC822.SIZE (read-only: no flag changes)."""

from __future__ import annotations

import imaplib
import re

from xfer.ls.context import LsContext
from xfer.ls.listing import Listing
from xfer.protocols.imap import ImapConnection, ImapConnector, _check, _quote
from xfer.protocols.pop3 import Pop3Connection, Pop3Connector
from xfer.urls import Url

IMAP_COLUMNS = ("folder", "messages", "size")
POP3_COLUMNS = ("mailbox", "messages", "size")
_STATUS = re.compile(rb"\(.*\bMESSAGES (\d+)(?:.*\bSIZE (\d+))?")
_SIZE = re.compile(rb"\bRFC822\.SIZE (\d+)")


def folder_figures(client: imaplib.IMAP4, folder: str) -> tuple[int, int]:
    """(messages, total bytes) of `folder` (blocking: runs in the session's thread)."""
    if "STATUS=SIZE" in client.capabilities:
        data = _check(*client.status(_quote(folder), "(MESSAGES SIZE)"), f"STATUS {folder}")
        found = _STATUS.search(data[0] if isinstance(data[0], bytes) else b"")
        if found and found.group(2) is not None:
            return int(found.group(1)), int(found.group(2))
    data = _check(*client.select(_quote(folder), readonly=True), f"EXAMINE {folder}")
    count = int(data[0] or 0)  # type: ignore[call-overload]
    if not count:
        return 0, 0
    items = _check(*client.fetch("1:*", "(RFC822.SIZE)"), f"FETCH {folder}")
    sizes = (_SIZE.search(item[0] if isinstance(item, tuple) else item) for item in items if item)  # type: ignore[arg-type]
    return count, sum(int(found.group(1)) for found in sizes if found)


async def list_imap(ctx: LsContext, url: Url) -> Listing:
    connector = ImapConnector(url, ctx.host_config(url))

    async def folders(conn: ImapConnection) -> Listing:
        listing = Listing(IMAP_COLUMNS)
        for folder in sorted(await conn.folders()):
            messages, size = await conn.call(folder_figures, conn.client, folder.name)
            listing.rows.append({"folder": folder.name, "messages": messages, "size": size})
        return listing

    return await ctx.with_connection(connector, folders, "LIST")


async def list_pop3(ctx: LsContext, url: Url) -> Listing:
    connector = Pop3Connector(url, ctx.host_config(url))

    async def stat(conn: Pop3Connection) -> Listing:
        messages, size = await conn.call(conn.client.stat)
        return Listing(POP3_COLUMNS, [{"mailbox": "INBOX", "messages": messages, "size": size}])

    return await ctx.with_connection(connector, stat, "STAT")
