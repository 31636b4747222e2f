"""The mbox store: appended through the stdlib `mailbox.mbox` and its `flush()` (which
fsyncs), under an fcntl lock. Not `mbox.lock()`: its dot lock outlives a killed process
and then refuses every later run; the kernel drops an fcntl lock when its process dies.
An append is not atomic, so recovery truncates the file back to the size recorded
before the batch: a torn message disappears and the batch is fetched again. Quoting is
mboxrd (`From ` and `>From ` lines in the body get one more `>`), which a reader can
undo exactly (`stores.unquote_mboxrd`); the stdlib quotes only `From `."""

from __future__ import annotations

import fcntl
import mailbox
import os
import re
import time
from pathlib import Path
from typing import BinaryIO

from xfer.mailbox_store.spool import CHUNK, Spool
from xfer.mailbox_store.stores import Incoming, Store, header_block, quoted_token, to_lf

_FROM_LINE = re.compile(rb"^(>*From )", re.MULTILINE)
_RETURN_PATH = re.compile(rb"^Return-Path:[ \t]*<([^<>\s]*)>", re.MULTILINE | re.IGNORECASE)


class _Mboxrd(mailbox.mbox):
    """stdlib mbox with its lossy `From ` mangling off: `MboxStore` quotes mboxrd itself."""

    _mangle_from_ = False


class MboxStore(Store):
    def __init__(self, path: Path) -> None:
        self.path = path
        self._box: _Mboxrd | None = None

    def _open(self) -> _Mboxrd:
        if self._box is None:
            self._box = _Mboxrd(str(self.path), create=True)
        return self._box

    def mark(self) -> int:
        try:
            return os.path.getsize(self.path)
        except FileNotFoundError:
            return 0

    def spool(self, token: str) -> Spool:
        return Spool(str(self.path.with_name(f".{self.path.name}.spool,U={quoted_token(token)}")))

    def _spools(self) -> list[Path]:
        return list(self.path.parent.glob(f".{self.path.name}.spool,U=*"))

    def write(self, batch: list[Incoming]) -> list[bytes]:
        heads = []
        with open(self.path, "ab") as guard:  # closing it releases the lock
            fcntl.lockf(guard, fcntl.LOCK_EX)
            for message in batch:
                head = header_block(message.raw)
                heads.append(head)
                if message.spool is None:
                    self._open().add(from_line(message, head) + b"\n" + _FROM_LINE.sub(rb">\1", to_lf(message.raw)))
                else:
                    self._append_spooled(guard, message, head)
            if self._box is not None:
                self._box.flush()  # fsyncs the appended data
        return heads

    def _append_spooled(self, out: BinaryIO, message: Incoming, head: bytes) -> None:
        """Append a spooled message as `mailbox.mbox.add` would (From line, mboxrd-quoted
        body, a blank line after), a chunk at a time, then remove its spool file."""
        if self._box is not None:
            self._box.flush()
            self.close()  # its table of contents is stale after this append: reopened when needed
        out.seek(0, os.SEEK_END)
        out.write(from_line(message, head) + b"\n")
        at_line_start, last = True, b"\n"
        with open(message.spool, "rb") as source:  # type: ignore[arg-type]
            while piece := source.readline(CHUNK):
                if at_line_start and _FROM_LINE.match(piece):
                    piece = b">" + piece
                out.write(piece)
                at_line_start, last = piece.endswith(b"\n"), piece[-1:]
        out.write((b"" if last == b"\n" else b"\n") + b"\n")
        out.flush()
        os.fsync(out.fileno())
        os.unlink(message.spool)  # type: ignore[arg-type]

    def recover(self, mark: int, tokens: list[str]) -> set[str]:
        for stale in self._spools():
            stale.unlink(missing_ok=True)
        self.close()
        if self.path.exists() and os.path.getsize(self.path) > mark:
            with open(self.path, "r+b") as handle:
                handle.truncate(mark)
                os.fsync(handle.fileno())
        return set()

    def close(self) -> None:
        if self._box is not None:
            self._box.close()
            self._box = None


def from_line(message: Incoming, head: bytes) -> bytes:
    """`From sender date`: the envelope sender from Return-Path in the message's
    header block `head` (else MAILER-DAEMON) and the server's receive time (else
    now), as mbox readers expect."""
    match = _RETURN_PATH.search(head)
    sender = match.group(1) if match and match.group(1) else b"MAILER-DAEMON"
    when = time.gmtime(message.received) if message.received is not None else time.gmtime()
    return b"From " + sender + b" " + time.asctime(when).encode()
