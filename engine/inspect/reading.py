"""Open what the user points at — a Maildir, an mbox file or a single .eml — and
yield each message's raw bytes with its key. Parsing is left to the caller so that
one unreadable or hostile message never stops the listing."""

from __future__ import annotations

import mailbox
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from xfer.errors import XferError

MAILDIR_SUBDIRS = ("cur", "new", "tmp")


class MailboxError(XferError):
    """The path is not something we can read as a mailbox (one line, for the user)."""


@dataclass(frozen=True)
class RawMessage:
    """One message as stored: `key` is the mbox index or the Maildir file name;
    `error` says why the bytes could not be read (then `data` is empty)."""

    key: str
    data: bytes
    error: str | None = None


def mailbox_kind(path: Path) -> str:
    """'maildir' (a folder with cur/new/tmp), 'mbox' (a file starting with a From_ line,
    or empty) or 'eml' (any other file: one message)."""
    if path.is_dir():
        if all((path / sub).is_dir() for sub in MAILDIR_SUBDIRS):
            return "maildir"
        raise MailboxError(f"{path}: a folder but not a Maildir (needs cur/, new/ and tmp/)")
    if not path.exists():
        raise MailboxError(f"{path}: no such file or folder")
    try:
        with path.open("rb") as file:
            head = file.read(5)
    except OSError as exc:
        raise MailboxError(f"{path}: cannot read: {exc.strerror or exc}") from None
    return "mbox" if head in (b"", b"From ") else "eml"


def read_messages(path: Path) -> Iterator[RawMessage]:
    """Every message under `path`, in storage order (Maildir: sorted by file name,
    which starts with the delivery time)."""
    kind = mailbox_kind(path)
    if kind == "eml":
        yield RawMessage(path.name, path.read_bytes())
        return
    box: mailbox.Mailbox = (
        mailbox.Maildir(path, factory=None, create=False) if kind == "maildir" else mailbox.mbox(path, create=False)
    )
    try:
        keys = sorted(box.keys()) if kind == "maildir" else list(box.keys())
        for key in keys:
            try:
                yield RawMessage(str(key), box.get_bytes(key))
            except (OSError, KeyError) as exc:  # deleted or unreadable since listing
                yield RawMessage(str(key), b"", f"unreadable: {type(exc).__name__}")
    finally:
        box.close()
