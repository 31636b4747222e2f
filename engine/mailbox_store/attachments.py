"""Saving the attachments of a fetched message under a directory, safely.

The sender chooses attachment names, so a name is only ever a hint: path separators,
control characters and leading dots are replaced, over-long names are cut, and an
unusable name becomes `attachment-N`. An existing file is never overwritten: the
name gets ` (1)`, ` (2)`, ... Each file is written under a temporary name and
hard-linked to its final name (link fails if the name exists, and never follows a
symlink planted there), so it appears only when complete."""

from __future__ import annotations

import contextlib
import email.policy
import os
import re
import tempfile
from email.parser import BytesParser
from pathlib import Path

from xfer.pathsafety import check_name

_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\]")
_MAX_NAME_BYTES = 200
_MAX_TRIES = 1000


def safe_attachment_name(name: str | None, index: int) -> str:
    """A single safe file name from a sender-chosen one (never a path)."""
    text = _UNSAFE.sub("_", name or "").strip().lstrip(".").strip()
    while len(text.encode("utf-8", "surrogateescape")) > _MAX_NAME_BYTES:
        stem, dot, ext = text.rpartition(".")
        text = (stem[:-1] + dot + ext) if dot and len(ext) < 16 and stem else text[:-1]
    if not text or check_name(text) is not None:
        return f"attachment-{index}"
    return text


def _variants(name: str) -> list[str]:
    stem, dot, ext = name.rpartition(".")
    if not dot or not stem:
        stem, ext, dot = name, "", ""
    return [name] + [f"{stem} ({n}){dot}{ext}" for n in range(1, _MAX_TRIES)]


def save_attachments(raw: bytes, directory: Path) -> list[str]:
    """Write the attachments of message `raw` into `directory`; their final names."""
    message = BytesParser(policy=email.policy.default).parsebytes(raw)
    saved: list[str] = []
    index = 0
    for part in message.walk():
        if part.is_multipart() or not (part.is_attachment() or part.get_filename()):
            continue
        index += 1
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        saved.append(_write_new(directory, safe_attachment_name(part.get_filename(), index), payload))
    return saved


def _write_new(directory: Path, name: str, data: bytes) -> str:
    directory.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".attachment-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        for candidate in _variants(name):
            try:
                os.link(tmp, directory / candidate)
                return candidate
            except FileExistsError:
                continue
        raise FileExistsError(f"{name!r}: {_MAX_TRIES} files of that name exist already")
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
