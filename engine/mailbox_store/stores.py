"""Maildir and mbox stores that write a batch of messages atomically per message.

Both keep the local convention of LF line endings. A store answers three things:
`mark()` (what a crash recovery needs to know before a batch is written), `write()`
(store a batch; durable — fsynced — when it returns) and `recover()` (after a crash
during a batch: which of its messages are safely stored; everything else is gone).

- Maildir: each message is written to `tmp/`, fsynced and renamed into `new/`, so it
  appears complete or not at all. The file name carries the message's source id
  (`...,U=<token>`, as mbsync does), so recovery can tell which messages of an
  interrupted batch made it. The stdlib `mailbox.Maildir.add` cannot name the file
  and does not fsync, hence this small writer; the names stay readable by it.
- mbox: `engine.mailbox_store.mbox` (imported only for an mbox: the stdlib `mailbox`
  brings the `email` package, ~15 ms of every Maildir run's start otherwise)."""

from __future__ import annotations

import abc
import itertools
import os
import re
import socket
import time
from pathlib import Path
from typing import NamedTuple
from urllib.parse import quote

from xfer.errors import UnsafePathError
from xfer.mailbox_store.spool import Spool
from xfer.pathsafety import safe_mkdir, safe_target

_BLANK_LINE = re.compile(rb"\r?\n\r?\n")  # two line ends in a row, in any mix of CRLF and LF
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*")  # what `quote` never changes
_counter = itertools.count(1)
#: A new file in tmp/: never an existing one, never through a symlink.
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


class Incoming(NamedTuple):
    """A message to store: its source id (`token`, unique per account and folder), the
    bytes as the server sent them, and when the server received it (epoch, or None).
    A message streamed to disk (`engine.mailbox_store.spool`) has only its header block
    in `raw` and the whole of it, in local form, in the file `spool`. (A NamedTuple:
    one is made per message, at a third of a frozen dataclass's cost.)"""

    token: str
    raw: bytes
    received: float | None = None
    spool: str | None = None


def to_lf(raw: bytes) -> bytes:
    """CRLF -> LF, ending with one newline: the local form of a message. (Split and
    join is `raw.replace(b"\\r\\n", b"\\n")` exactly, and a third faster on a 4 KiB
    message: 6.7 µs against 9.9.)"""
    text = b"\n".join(raw.split(b"\r\n"))
    return text if text.endswith(b"\n") else text + b"\n"


def header_block(raw: bytes) -> bytes:
    """The header block of a message (up to and including the blank line), LF form.
    Only the part up to the first blank line is converted: the body can be large."""
    blank = _BLANK_LINE.search(raw)
    return local_header(to_lf(raw if blank is None else raw[: blank.end()]))


def local_header(text: bytes) -> bytes:
    """The header block of a message already in local (LF) form: the same bytes as
    `header_block` of its raw form, for a store that converted the whole of it anyway."""
    end = text.find(b"\n\n")
    return text if end < 0 else text[: end + 2]


class Store(abc.ABC):
    """One local folder. Methods block (disk I/O): callers run them in a thread."""

    #: `mark()` touches no disk (a constant): callers may skip the thread for it.
    mark_is_free = False

    @abc.abstractmethod
    def mark(self) -> int:
        """What recovery needs from before a batch (mbox: its size)."""

    @abc.abstractmethod
    def write(self, batch: list[Incoming]) -> list[bytes]:
        """Store `batch` in order; every message is on disk (fsynced) when this returns.
        Returns each message's `header_block` (for the ledger's digests: the store has
        just converted the message, so this costs a `find`, not a second pass)."""

    @abc.abstractmethod
    def recover(self, mark: int, tokens: list[str]) -> set[str]:
        """After a crash during a batch of `tokens`: the tokens safely stored; leaves
        no partial message behind (spool files included)."""

    @abc.abstractmethod
    def spool(self, token: str) -> Spool:
        """A spool file for a message too large for memory, where `write` will take it from."""

    def close(self) -> None:
        """Release open files (a store is reopened on the next run)."""


class MaildirStore(Store):
    mark_is_free = True  # recovery goes by the names in the folder, not by a mark

    def __init__(self, path: Path) -> None:
        self.path = path
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(parents=True, exist_ok=True)
        self._host = socket.gethostname().replace("/", "\\057").replace(":", "\\072") or "localhost"

    def mark(self) -> int:
        return 0

    def _names(self) -> str:
        """What every file name written now starts with (`time.P<pid>Q`): the counter
        and the token follow (`_name`)."""
        return f"{int(time.time())}.P{os.getpid()}Q"

    def _name(self, start: str, token: str) -> str:
        return f"{start}{next(_counter)}.{self._host},U={quoted_token(token)}"

    def spool(self, token: str) -> Spool:
        return Spool(os.path.join(self.path, "tmp", self._name(self._names(), token)))  # recover() knows tmp/ names

    def write(self, batch: list[Incoming]) -> list[bytes]:
        tmp_dir, new_dir = f"{self.path}/tmp/", f"{self.path}/new/"  # str: no Path per file
        start, heads = self._names(), []
        for message in batch:
            if message.spool is not None:  # already in tmp/, whole and fsynced
                os.rename(message.spool, new_dir + os.path.basename(message.spool))
                heads.append(header_block(message.raw))
                continue
            name = self._name(start, message.token)
            text = to_lf(message.raw)
            fd = os.open(tmp_dir + name, _CREATE, 0o600)
            try:
                _write_all(fd, text)
                if message.received is not None:
                    os.utime(fd, (message.received, message.received))
                os.fsync(fd)
            finally:
                os.close(fd)
            os.rename(tmp_dir + name, new_dir + name)
            heads.append(local_header(text))
        _fsync_dir(Path(new_dir))
        return heads

    def recover(self, mark: int, tokens: list[str]) -> set[str]:
        wanted = {f",U={quoted_token(token)}": token for token in tokens}
        found = set()
        for sub in ("tmp", "new", "cur"):
            for name in os.listdir(self.path / sub):
                suffix = name.split(":", 1)[0]
                token = next((t for marker, t in wanted.items() if suffix.endswith(marker)), None)
                if token is None:
                    continue
                if sub == "tmp":
                    os.unlink(self.path / sub / name)  # never renamed: may be torn
                else:
                    found.add(token)
        return found


def unquote_mboxrd(body: bytes) -> bytes:
    """Undo mboxrd quoting (for readers and tests)."""
    return re.sub(rb"(?m)^>(>*From )", rb"\1", body)


def open_store(root: Path, name: str, fmt: str) -> Store:
    """The store of local folder `name` (one safe path component) under `root`."""
    if fmt == "maildir":
        return MaildirStore(safe_mkdir(root, name))
    from xfer.mailbox_store.mbox import MboxStore  # the stdlib mailbox (and email) only for mbox

    target = safe_target(root, f"{name}.mbox", make_parents=True)
    if target.is_symlink():
        raise UnsafePathError(f"{str(target)!r} is a symlink; refusing to write through it")
    return MboxStore(target)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def quoted_token(token: str) -> str:
    """`quote(token, safe='')`, skipped for the usual token (digits and a dash):
    quote costs more than writing the file."""
    return token if _UNRESERVED.fullmatch(token) else quote(token, safe="")


def _write_all(fd: int, data: bytes) -> None:
    written = os.write(fd, data)  # a regular file takes it all at once, but may not
    if written < len(data):
        view = memoryview(data)[written:]
        while view:
            view = view[os.write(fd, view):]
