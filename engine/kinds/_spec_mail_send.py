"""The `mail.send` spec model (validation only: see `engine/kinds/__init__.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, Field, field_validator, model_validator

from xfer.mail.compose import RESERVED_HEADERS, addresses, bare, check_headers, placeholders
from xfer.mail.sending import StartTls
from xfer.spec import JobSpec, url_field


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


def _one(value: str) -> str:
    if len(bare(addresses(value))) != 1:
        raise ValueError(f"{value!r}: give one address")
    return value


Addresses = Annotated[list[str], BeforeValidator(_one_or_many), AfterValidator(addresses)]
OneAddress = Annotated[str, AfterValidator(_one)]


class MailSendSpec(JobSpec):
    kind: Literal["mail.send"]
    smtp: url_field("smtp", "smtps")  # type: ignore[valid-type]
    starttls: StartTls = Field("auto", description="true: require STARTTLS; false: never; auto: when offered")
    sender: OneAddress = Field(alias="from", description="From header; its address is the envelope sender")
    to: Addresses = Field(default_factory=list, description="To addresses (with merge: the CSV's to column)")
    cc: Addresses = Field(default_factory=list)
    bcc: Addresses = Field(default_factory=list, description="receive the message; no header names them")
    reply_to: OneAddress | None = None
    subject: str = Field(description="template: $name is a merge field")
    text: str | None = Field(None, description="plain-text body (template)")
    text_file: Path | None = Field(None, description="plain-text body read from this file (template)")
    html: str | None = Field(None, description="HTML alternative (template; field values are escaped)")
    html_file: Path | None = Field(None, description="HTML alternative read from this file (template)")
    attachments: list[Path] = Field(default_factory=list, description="files to attach (type from the name)")
    headers: dict[str, str] = Field(default_factory=dict, description="more headers (templates)")
    merge: Path | None = Field(None, description="CSV: one message per row, a 'to' column plus fields")
    dry_run_dir: Path | None = Field(None, description="--dry-run writes .eml files here (default NAME-outbox)")
    concurrency: int | None = Field(None, ge=1, le=1000, description="messages sent at once (default: host limit)")
    command_timeout: float = Field(60.0, gt=0, description="seconds one SMTP command may take")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        check_headers(value, RESERVED_HEADERS, "from its own key or by xfer")
        return value

    @field_validator("subject")
    @classmethod
    def _subject(cls, value: str) -> str:
        if any(ch in value for ch in "\r\n\0"):
            raise ValueError("a subject is one line")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MailSendSpec:
        if (self.text is None) == (self.text_file is None):
            raise ValueError("give the body as text or text_file (one of them)")
        if self.html is not None and self.html_file is not None:
            raise ValueError("give html or html_file, not both")
        if self.merge is not None and self.to:
            raise ValueError("with merge, each message goes to its row's 'to' column: leave 'to' out")
        if self.merge is None and not (self.to or self.cc or self.bcc):
            raise ValueError("give recipients: to, cc or bcc (or a merge file)")
        if self.smtp.tls and self.starttls is True:
            raise ValueError("smtps:// is implicit TLS: starttls must be auto or false")
        inline = {"subject": self.subject, "text": self.text or "", "html": self.html or "",
                  **{f"headers.{name}": value for name, value in self.headers.items()}}
        for where, template in inline.items():  # templates in files are checked when read
            used = placeholders(template, where)
            if used and self.merge is None:
                raise ValueError(f"{where} uses ${min(used)}, but fields come from a merge file and there is none")
        return self
