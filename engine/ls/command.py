"""`xfer ls URL`: which lister a scheme gets, and how a failure is shown.

Credentials come from the URL, then the `--jobs` file's host block, then ~/.netrc
(`JobFile.with_credentials`, as for a run). A failure is one line on stderr naming
the URL without its password, and exit code 1 (2 for bad input, as `xfer run`)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys

from xfer.errors import SpecError, XferError, describe
from xfer.ls.context import LsContext, load_file
from xfer.ls.listing import Listing
from xfer.report import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from xfer.urls import Url, parse_url


def _check(args: argparse.Namespace, url: Url) -> None:
    """Options that make no sense for this URL, refused before any connection."""
    ftp = url.scheme in ("ftp", "ftps")
    if not ftp and (args.include or args.exclude or args.recursive or args.depth is not None):
        raise SpecError(f"--include, --exclude, -R and --depth apply to ftp:// and ftps:// URLs, not {url.scheme}://")
    if args.depth is not None and args.depth < 0:
        raise SpecError("--depth must be >= 0")
    if args.include or args.exclude:
        from xfer.kinds._pathfilter import check_patterns

        try:
            check_patterns([*args.include, *args.exclude])
        except ValueError as exc:
            raise SpecError(f"--include/--exclude: {exc}") from None


async def _list(args: argparse.Namespace, ctx: LsContext, url: Url) -> Listing:
    try:
        if url.scheme in ("ftp", "ftps"):
            from xfer.ls.ftp import list_ftp

            depth = args.depth if args.depth is not None else (None if args.recursive else 0)
            return await list_ftp(
                ctx, url, depth=depth, include=args.include, exclude=args.exclude, symlinks=args.symlinks
            )
        if url.scheme.startswith("nntp"):
            from xfer.ls.news import list_news

            return await list_news(ctx, url)
        from xfer.ls.mail import list_imap, list_pop3

        inbox = dataclasses.replace(url, path="/")
        return await (list_imap(ctx, inbox) if url.scheme.startswith("imap") else list_pop3(ctx, inbox))
    finally:
        await ctx.close()


def run(args: argparse.Namespace) -> int:
    from xfer.cli import loop_factory

    try:
        url = parse_url(args.url, {"ftp", "ftps", "nntp", "nntps", "imap", "imaps", "pop3", "pop3s"})
    except ValueError as exc:
        print(f"xfer: ls: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    _check(args, url)
    ctx = LsContext(load_file(args.jobs), insecure=args.insecure)
    shown = str(url)
    try:
        url = ctx.file.with_credentials(url)
        if url.scheme.startswith(("imap", "pop3")) and not url.user:
            raise SpecError(f"{url.scheme}:// needs a user: {url.scheme}://USER@{url.endpoint}, a host block or ~/.netrc")
        with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:
            listing = runner.run(_list(args, ctx, url))
    except SpecError:
        raise  # bad input: `xfer` prints it, exit 2
    except (XferError, OSError, TimeoutError) as exc:
        print(f"xfer: ls {shown}: {_one_line(exc, url)}", file=sys.stderr)
        return EXIT_FAILED
    for line in ctx.problems:
        print(f"xfer: ls {shown}: {line}", file=sys.stderr)
    from xfer.ls.output import print_json, print_table

    (print_json if args.json else print_table)(listing, sys.stdout)
    return EXIT_FAILED if listing.incomplete or ctx.errors else EXIT_OK


def _one_line(exc: BaseException, url: Url) -> str:
    """`describe(exc)`, with the password blanked should a library have echoed it."""
    text = describe(exc)
    secret = url.secret()
    if secret and secret in text:
        text = text.replace(secret, "**********")
    return text
