"""The `mail.roundtrip` spec model (validation only: see `engine/kinds/__init__.py`)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from xfer.mail.compose import check_headers
from xfer.mail.message import TOKEN_HEADER
from xfer.mail.sending import StartTls
from xfer.mail.spec import Envelope
from xfer.spec import JobSpec, size_field, url_field

_RESERVED = {"message-id", TOKEN_HEADER.lower()}


class MailRoundtripSpec(JobSpec):
    kind: Literal["mail.roundtrip"]
    smtp: url_field("smtp", "smtps")  # type: ignore[valid-type]
    starttls: StartTls = Field("auto", description="SMTP: true requires STARTTLS, false never, auto when offered")
    fetch: url_field("pop3", "pop3s", "imap", "imaps")  # type: ignore[valid-type]
    fetch_starttls: StartTls = Field("auto", description="POP3 STLS / IMAP STARTTLS, as for starttls")
    envelope: Envelope
    headers: dict[str, str] = Field(
        default_factory=dict, description="header templates ({index}, {token}, {run}); From/To/Subject have defaults"
    )
    count: int = Field(1, ge=1, le=10000)
    concurrency: int = Field(1, ge=1, le=1000, description="messages sent at once")
    body: str | None = Field(None, description="body template ({index}, {token}, {run})")
    size: size_field() | None = Field(None, description="generate a text body of this size instead")  # type: ignore[valid-type]
    attachments: list[size_field()] = Field(default_factory=list, description="binary attachments of these sizes")  # type: ignore[valid-type]
    timeout: float = Field(60.0, gt=0, description="seconds to wait for delivery after the sends")
    poll_interval: float = Field(0.2, gt=0, le=60)
    command_timeout: float = Field(60.0, gt=0, description="seconds one protocol command may take")
    cleanup: bool = Field(False, description="delete the test messages from the mailbox afterwards")

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        check_headers(value, _RESERVED, "by xfer (it carries the message's token)")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> MailRoundtripSpec:
        if self.body is not None and self.size is not None:
            raise ValueError("give body (a template) or size (a generated body), not both")
        for url, mode, key in ((self.smtp, self.starttls, "starttls"), (self.fetch, self.fetch_starttls, "fetch_starttls")):
            if url.tls and mode is True:
                raise ValueError(f"{url.scheme}:// is implicit TLS: {key} must be auto or false")
        return self
