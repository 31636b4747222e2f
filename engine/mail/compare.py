"""What was sent versus what arrived: a compact fingerprint of a message and the verdict.

A fingerprint keeps the top-level headers (name, unfolded value) and, per MIME leaf
part, its content type and the SHA-256 of its payload after transfer decoding, so a
roundtrip of many large messages never holds their bodies. Text parts have line ends
normalised (CRLF -> LF) first: servers hand back CRLF where a sender wrote LF.

Headers that arrive but were not sent (Received, Return-Path, Delivered-To, ...) were
added in transit: listed, never counted as differences."""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from dataclasses import dataclass, field

_FOLD = re.compile(r"\r?\n(?=[ \t])")

OK, MISSING, DUPLICATED, BODY_DIFFERS, HEADER_DIFFERS = "ok", "missing", "duplicated", "body differs", "header differs"


@dataclass(frozen=True, slots=True)
class Part:
    content_type: str
    size: int
    sha256: str


@dataclass(frozen=True, slots=True)
class Fingerprint:
    headers: tuple[tuple[str, str], ...]
    parts: tuple[Part, ...]


@dataclass(slots=True)
class Comparison:
    verdict: str
    differences: list[str] = field(default_factory=list)
    transit_headers: list[str] = field(default_factory=list)


def unfold(value: str) -> str:
    """A header value on one line (RFC 5322 unfolding), without surrounding blanks."""
    return _FOLD.sub("", value).strip()


def fingerprint(raw: bytes) -> Fingerprint:
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    headers = tuple((name, unfold(str(value))) for name, value in message.items())
    parts = []
    for part in message.walk():
        if part.is_multipart():
            continue
        payload = part.get_payload(decode=True) or b""
        if part.get_content_maintype() == "text":
            payload = payload.replace(b"\r\n", b"\n")
        parts.append(Part(part.get_content_type(), len(payload), hashlib.sha256(payload).hexdigest()))
    return Fingerprint(headers, tuple(parts))


def compare(sent: Fingerprint, received: bytes) -> Comparison:
    """The verdict for one received copy: ok, body differs or header differs."""
    got = fingerprint(received)
    differences: list[str] = []
    remaining = list(got.headers)
    for name, value in sent.headers:
        match = next((i for i, (n, v) in enumerate(remaining) if n.lower() == name.lower() and v == value), None)
        if match is not None:
            del remaining[match]
            continue
        others = [v for n, v in remaining if n.lower() == name.lower()]
        differences.append(f"header {name}: sent {value!r}, got {others[0]!r}" if others else f"header {name}: missing")
    sent_names = {name.lower() for name, _ in sent.headers}
    transit = [name for name, _ in remaining if name.lower() not in sent_names]
    body = _body_differences(sent.parts, got.parts)
    verdict = BODY_DIFFERS if body else HEADER_DIFFERS if differences else OK
    return Comparison(verdict, body + differences, transit)


def _body_differences(sent: tuple[Part, ...], got: tuple[Part, ...]) -> list[str]:
    if len(sent) != len(got):
        return [f"body: sent {len(sent)} MIME part(s), got {len(got)}"]
    return [
        f"body part {index} ({want.content_type}): sent {want.size} bytes, got {have.size} bytes"
        + ("" if want.size != have.size else " with other content")
        for index, (want, have) in enumerate(zip(sent, got), 1)
        if want != have
    ]
