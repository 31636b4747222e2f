"""`xfer mail inspect PATH [--json] [--min-score N]`: the listing, as a rich table
on a terminal or a JSON list of objects with `--json`. rich is imported only to draw
the table: reading and the rules need nothing but the standard library and the
bundled Public Suffix List.

Wiring (engine/cli.py is the lead's): `register(commands)` adds the `mail` group
with `inspect` under it; if a `mail` group already exists, call
`add_inspect(mail_subcommands)` on its subparsers instead."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from xfer.inspect.message import Inspection, inspect_message
from xfer.inspect.reading import MailboxError, read_messages
from xfer.inspect.signals import W_MALFORMED, Signal
from xfer.report import EXIT_BAD_INPUT, EXIT_OK

if TYPE_CHECKING:
    from rich.table import Table
    from rich.text import Text

#: Scores from here on are shown in red: one phishing technique, or several odd headers.
ALERT_SCORE = 4

#: Terminal control characters (ESC sequences in a Subject could repaint the screen).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `mail inspect` to the top-level commands."""
    mail = subparsers.add_parser("mail", help="mail tools (inspect a mailbox)")
    add_inspect(mail.add_subparsers(dest="mail_command", metavar="COMMAND", required=True))


def add_inspect(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add `inspect` to an existing `mail` group."""
    parser = subparsers.add_parser(
        "inspect",
        help="list the messages in an mbox/Maildir and flag spam and phishing signals",
        description="List the messages of an mbox file, a Maildir (a folder with cur/new/tmp) or a "
        "single .eml file, with the spam/phishing signals of each and the evidence. Offline: no DNS.",
    )
    parser.add_argument("path", metavar="PATH", help="mbox file, Maildir folder or .eml file")
    parser.add_argument("--json", action="store_true", help="print a JSON list of objects instead of a table")
    parser.add_argument("--min-score", type=int, default=0, metavar="N", help="show only messages scoring N or more")
    parser.set_defaults(handler=cmd_inspect)


def cmd_inspect(args: argparse.Namespace) -> int:
    try:
        records = [
            record
            for record in (inspect_raw(raw.key, raw.data, raw.error) for raw in read_messages(Path(args.path)))
            if record.score >= args.min_score
        ]
    except MailboxError as exc:
        print(f"xfer: mail inspect: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if args.json:
        print(json.dumps([record.as_dict() for record in records], indent=2, ensure_ascii=False))
    else:
        from rich.console import Console

        console = Console()
        console.print(table(records))
        console.print(evidence(records), soft_wrap=True)
    return EXIT_OK


def inspect_raw(key: str, data: bytes, error: str | None) -> Inspection:
    """A record for a stored message, or one that only says why it could not be read."""
    if error is not None:
        return Inspection(key=key, size=0, signals=[Signal("unreadable", W_MALFORMED, error)])
    return inspect_message(key, data)


def safe(text: str) -> str:
    """Text without terminal control characters, for display."""
    return _CONTROL.sub("\ufffd", text)


def table(records: list[Inspection]) -> Table:
    """The listing, rule names only (the evidence follows in `evidence`). Every cell
    is a plain Text so that mail content is never read as rich markup."""
    from rich.table import Table
    from rich.text import Text

    grid = Table(title=f"{len(records)} message(s)")
    for column in ("#", "date", "from", "subject", "size", "attachments", "score", "signals"):
        grid.add_column(
            column,
            overflow="fold",
            no_wrap=column in ("#", "size", "score", "signals"),
            justify="right" if column in ("#", "size", "score") else "left",
        )
    for number, record in enumerate(records, 1):
        grid.add_row(
            Text(str(number)),
            Text(record.date.strftime("%Y-%m-%d %H:%M") if record.date else "-"),
            Text(safe(record.sender)),
            Text(safe(record.subject)),
            Text(str(record.size)),
            Text("\n".join(f"{safe(item.name)} ({item.size})" for item in record.attachments)),
            Text(str(record.score), style="bold red" if record.score >= ALERT_SCORE else ""),
            Text("\n".join(dict.fromkeys(signal.rule for signal in record.signals))),
        )
    return grid


def evidence(records: list[Inspection]) -> Text:
    """Below the table: per message (by # and store key), each signal with its weight and evidence."""
    from rich.text import Text

    lines = Text()
    for number, record in enumerate(records, 1):
        if record.signals:
            lines.append(f"#{number} {safe(record.key)} (score {record.score})\n", style="bold")
            for signal in record.signals:
                lines.append(f"  {signal.rule} +{signal.weight}: {safe(signal.evidence)}\n")
    return lines
