"""Real messages for `mail.send`: addresses, `$name` templates and MIME composition.

A `Draft` is what every message of a job shares (sender, recipients, subject and
bodies as templates, attachments read once); `compose` fills it with one message's
fields (a mail-merge row, or none) and gives the MIME message and its envelope.
Bcc recipients are in the envelope only, never in a header. No pydantic here: the
spec model imports the address and template checks from this module."""

from __future__ import annotations

import html
import mimetypes
import re
import string
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, getaddresses, make_msgid

#: Headers xfer writes itself: a `headers:` entry may not set them.
RESERVED_HEADERS = frozenset({
    "from", "to", "cc", "bcc", "reply-to", "subject", "date", "message-id",
    "mime-version", "content-type", "content-transfer-encoding",
})
_HEADER_NAME = re.compile(r"^[!-9;-~]+$")  # printable ASCII except ':' (RFC 5322)
#: Content types of compressed files, which `mimetypes` reports as an encoding.
_COMPRESSED = {"gzip": "application/gzip", "bzip2": "application/x-bzip2", "xz": "application/x-xz"}


def addresses(value: str | Iterable[str]) -> list[str]:
    """Header-form addresses (`Name <a@b>`, `a@b`, comma-separated) checked one by one;
    ValueError names the first bad one."""
    texts = [value] if isinstance(value, str) else list(value)
    found = []
    for text in texts:
        if any(ch in text for ch in "\r\n\0"):
            raise ValueError(f"{text!r}: an address is one line")
        parsed = getaddresses([text])
        if not parsed or any("@" not in addr or " " in addr for _, addr in parsed):
            raise ValueError(f"{text!r} is not an e-mail address like 'Name <name@example.org>'")
        found.append(text)
    return found


def check_headers(headers: Mapping[str, str], reserved: Collection[str], why: str) -> None:
    """ValueError unless every name is a header name not in `reserved` (lower case; `why`
    says who sets those) and every value is one line."""
    for name, value in headers.items():
        if not _HEADER_NAME.match(name):
            raise ValueError(f"{name!r} is not a header name")
        if name.lower() in reserved:
            raise ValueError(f"{name} is set {why}")
        if any(ch in str(value) for ch in "\r\n\0"):
            raise ValueError(f"header {name}: a value is one line")


def bare(headers: Sequence[str]) -> list[str]:
    """The bare addresses (what RCPT TO and MAIL FROM take) in header-form addresses."""
    return [addr for _, addr in getaddresses(list(headers))]


def placeholders(template: str, where: str) -> set[str]:
    """The `$name` / `${name}` fields a template uses; ValueError on a stray `$`."""
    parsed = string.Template(template)
    if not parsed.is_valid():
        raise ValueError(f"{where}: a '$' that starts no field name (a literal $ is written $$)")
    return set(parsed.get_identifiers())


def fill(template: str, fields: Mapping[str, str], *, escape: bool = False) -> str:
    """A template with its fields filled in (HTML-escaped for an HTML body)."""
    if escape:
        fields = {name: html.escape(value) for name, value in fields.items()}
    return string.Template(template).substitute(fields)


@dataclass(frozen=True, slots=True)
class Attachment:
    name: str
    maintype: str
    subtype: str
    data: bytes


def attachment(name: str, data: bytes) -> Attachment:
    """A file to attach, with its MIME type guessed from its name (octet-stream if unknown)."""
    guessed, encoding = mimetypes.guess_type(name, strict=False)
    content_type = _COMPRESSED.get(encoding or "") or (guessed if not encoding else None)
    maintype, _, subtype = (content_type or "application/octet-stream").partition("/")
    return Attachment(name, maintype, subtype, data)


@dataclass(frozen=True, slots=True)
class Draft:
    """What every message of one job shares; text fields are `$name` templates."""

    sender: str
    subject: str
    text: str
    html: str | None = None
    to: list[str] = field(default_factory=list)
    cc: list[str] = field(default_factory=list)
    bcc: list[str] = field(default_factory=list)
    reply_to: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    attachments: list[Attachment] = field(default_factory=list)

    def templates(self) -> dict[str, str]:
        """Every template by the key it came from, for checking fields up front."""
        found = {"subject": self.subject, "text": self.text, **{f"headers.{k}": v for k, v in self.headers.items()}}
        if self.html is not None:
            found["html"] = self.html
        return found

    def fields_used(self) -> set[str]:
        return set().union(*(placeholders(text, where) for where, text in self.templates().items()))

    def header_fields(self) -> set[str]:
        """Fields that land in a header (they must be one line)."""
        return set().union(*(placeholders(text, where) for where, text in self.templates().items()
                             if where not in ("text", "html")))


@dataclass(frozen=True, slots=True)
class Outgoing:
    """One composed message: its bytes (CRLF, as sent) and its envelope."""

    sender: str
    recipients: list[str]
    data: bytes


def new_message_id(sender: str) -> str:
    """A Message-ID in the sender's domain; made once per message so a retry keeps it."""
    domain = bare([sender])[0].rpartition("@")[2] or "xfer.invalid"
    return make_msgid(domain=domain)


def envelope(draft: Draft, to: Sequence[str] | None = None) -> list[str]:
    """RCPT TO addresses of a message: To, Cc and Bcc, each once; `to` replaces the
    draft's To (a merge row's)."""
    return list(dict.fromkeys(bare([*(draft.to if to is None else to), *draft.cc, *draft.bcc])))


def compose(draft: Draft, fields: Mapping[str, str], message_id: str, to: Sequence[str] | None = None) -> Outgoing:
    """The message for one set of fields; `to` replaces the draft's To (a merge row's)."""
    to = list(draft.to if to is None else to)
    message = EmailMessage(policy=SMTP)
    message["From"] = draft.sender
    if to:
        message["To"] = ", ".join(to)
    if draft.cc:
        message["Cc"] = ", ".join(draft.cc)
    if draft.reply_to:
        message["Reply-To"] = draft.reply_to
    message["Subject"] = fill(draft.subject, fields)
    message["Date"] = format_datetime(datetime.now(timezone.utc))
    message["Message-ID"] = message_id
    for name, value in draft.headers.items():
        message[name] = fill(value, fields)
    message.set_content(fill(draft.text, fields))
    if draft.html is not None:
        message.add_alternative(fill(draft.html, fields, escape=True), subtype="html")
    for item in draft.attachments:
        message.add_attachment(item.data, maintype=item.maintype, subtype=item.subtype, filename=item.name)
    return Outgoing(bare([draft.sender])[0], envelope(draft, to), message.as_bytes())
