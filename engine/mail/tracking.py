"""Bookkeeping of a roundtrip: each sent message, when the server accepted it, when
and how often it showed up in the mailbox, and its verdict.

Times are taken on the monotonic clock (latencies) and shown as wall-clock ISO times
derived from one wall/monotonic pair, so a clock step during a run cannot make a
latency negative."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesHeaderParser
from typing import Any

from xfer.mail.compare import DUPLICATED, MISSING, OK, Comparison, Fingerprint, compare
from xfer.mail.latency import Latency
from xfer.mail.message import TOKEN_HEADER

NOT_ACCEPTED = "not accepted"


@dataclass(slots=True)
class Sent:
    index: int
    token: str
    message_id: str
    fingerprint: Fingerprint
    size: int
    sent: float | None = None  # monotonic
    accepted: float | None = None
    reply: str | None = None
    visible: float | None = None
    copies: list[str] = field(default_factory=list)  # mailbox uids
    comparison: Comparison | None = None

    @property
    def verdict(self) -> str:
        if self.accepted is None:
            return NOT_ACCEPTED
        if not self.copies:
            return MISSING
        if len(self.copies) > 1:
            return DUPLICATED
        return self.comparison.verdict if self.comparison else OK

    @property
    def latency(self) -> float | None:
        """Seconds from handing the message to SMTP to seeing it in the mailbox."""
        return None if self.visible is None or self.sent is None else self.visible - self.sent


def token_of(raw: bytes) -> str | None:
    """The `X-Xfer-Token` of a received message, if it has one."""
    value = BytesHeaderParser().parsebytes(raw).get(TOKEN_HEADER)
    return str(value).strip() if value is not None else None


class Tracker:
    def __init__(self) -> None:
        self.messages: dict[str, Sent] = {}
        self.seen: set[str] = set()  # mailbox uids already looked at
        self._wall0, self._mono0 = time.time(), time.monotonic()

    def add(self, record: Sent) -> None:
        self.messages[record.token] = record

    @property
    def waiting(self) -> list[Sent]:
        """Accepted messages not yet seen in the mailbox."""
        return [m for m in self.messages.values() if m.accepted is not None and not m.copies]

    def arrived(self, uid: str, raw: bytes | None, at: float) -> Sent | None:
        """Record a mailbox message; returns the test message it is a copy of, if any."""
        self.seen.add(uid)
        record = self.messages.get(token_of(raw) or "") if raw is not None else None
        if record is None or uid in record.copies:
            return None
        record.copies.append(uid)
        if record.visible is None:
            record.visible = at
            record.comparison = compare(record.fingerprint, raw)  # type: ignore[arg-type]
        return record

    def uids(self) -> list[str]:
        """Mailbox uids of every copy of a test message (what cleanup deletes)."""
        return [uid for record in self.messages.values() for uid in record.copies]

    def _iso(self, mono: float | None) -> str | None:
        if mono is None:
            return None
        moment = datetime.fromtimestamp(self._wall0 + (mono - self._mono0), timezone.utc)
        return moment.isoformat(timespec="milliseconds")

    def describe(self, record: Sent) -> dict[str, Any]:
        comparison = record.comparison
        return {
            "index": record.index,
            "token": record.token,
            "message_id": record.message_id,
            "size": record.size,
            "sent_at": self._iso(record.sent),
            "accepted_at": self._iso(record.accepted),
            "visible_at": self._iso(record.visible),
            "latency_s": round(record.latency, 4) if record.latency is not None else None,
            "smtp_reply": record.reply,
            "verdict": record.verdict,
            "copies": len(record.copies),
            "differences": comparison.differences if comparison else [],
            "transit_headers": comparison.transit_headers if comparison else [],
        }

    def summary(self) -> dict[str, Any]:
        latency = Latency()
        for record in self.messages.values():
            if record.latency is not None:
                latency.record(record.latency)
        records = sorted(self.messages.values(), key=lambda r: r.index)
        return {
            "sent": sum(1 for r in records if r.sent is not None),
            "accepted": sum(1 for r in records if r.accepted is not None),
            "verdicts": dict(Counter(r.verdict for r in records)),
            "latency_ms": latency.summary(),
            "messages": [self.describe(r) for r in records],
        }
