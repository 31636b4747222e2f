"""One message's record for the listing: who, what, how big, what it carries, and
its signals. `inspect_message` never raises, whatever the bytes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any, TypeVar, cast

from xfer.inspect.headers import Headers, clean
from xfer.inspect.links import message_links
from xfer.inspect.signals import W_MALFORMED, Mail, Signal, evaluate, score

T = TypeVar("T")


@dataclass(frozen=True)
class Attachment:
    name: str
    size: int


@dataclass
class Inspection:
    key: str
    size: int
    date: datetime | None = None
    sender: str = ""
    subject: str = ""
    attachments: list[Attachment] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)

    @property
    def score(self) -> int:
        return score(self.signals)

    def as_dict(self) -> dict[str, Any]:
        """The JSON form: one object per message, signals with their evidence."""
        return {
            "key": self.key,
            "date": self.date.isoformat() if self.date else None,
            "from": self.sender,
            "subject": self.subject,
            "size": self.size,
            "attachments": [{"name": item.name, "size": item.size} for item in self.attachments],
            "score": self.score,
            "signals": [{"rule": s.rule, "weight": s.weight, "evidence": s.evidence} for s in self.signals],
        }


def inspect_message(key: str, data: bytes) -> Inspection:
    """Parse and judge one message. A failure in any step is recorded as a
    'malformed-header' signal and the rest of the record is still filled in."""
    record = Inspection(key=key, size=len(data))
    try:
        message = cast(EmailMessage, BytesParser(policy=policy.default).parsebytes(data))
        headers = Headers(message)
    except Exception as exc:  # the parser itself failed: nothing more to read
        record.signals.append(Signal("malformed-header", W_MALFORMED, f"unparsable message ({type(exc).__name__})"))
        return record
    record.date = headers.date()
    record.sender = headers.get("From") or ""
    record.subject = headers.get("Subject") or ""
    problems: list[Signal] = []
    record.attachments = _guarded(lambda: attachments(message), [], "attachments", problems)
    links = _guarded(lambda: message_links(message), [], "links", problems)
    record.signals = evaluate(Mail(headers, links)) + problems
    return record


def attachments(message: EmailMessage) -> list[Attachment]:
    """Parts marked as attachments or carrying a file name, with their decoded sizes."""
    found = []
    for part in message.walk():
        if part.is_multipart():
            continue
        name = part.get_filename()
        if name is None and part.get_content_disposition() != "attachment":
            continue
        payload = part.get_payload(decode=True)
        found.append(Attachment(clean(str(name or "(unnamed)")), len(payload) if isinstance(payload, bytes) else 0))
    return found


def _guarded(step: Callable[[], T], default: T, what: str, problems: list[Signal]) -> T:
    """`step()`, or `default` with a signal saying which step a hostile MIME structure broke."""
    try:
        return step()
    except Exception as exc:  # MIME walking raises assorted types on hostile input
        problems.append(Signal("malformed-header", W_MALFORMED, f"{what}: unreadable MIME ({type(exc).__name__})"))
        return default
