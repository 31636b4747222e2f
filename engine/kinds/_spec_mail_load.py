"""The `mail.load` spec model (validation only: see `engine/kinds/__init__.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from xfer.mail.sending import StartTls
from xfer.mail.spec import Envelope, SizeMix
from xfer.spec import JobSpec, url_field


class MailLoadSpec(JobSpec):
    kind: Literal["mail.load"]
    smtp: url_field("smtp", "smtps")  # type: ignore[valid-type]
    starttls: StartTls = Field("auto", description="true: require STARTTLS; false: never; auto: when offered")
    envelope: Envelope
    recipients: int = Field(1, ge=1, le=1000, description="recipients per message, taken in turn from envelope.to")
    size: SizeMix = Field("4k", description="message size, or a mix {size: weight}")
    concurrency: int = Field(1, ge=1, le=10000, description="sessions (closed loop) / messages in flight (open loop)")
    messages_per_connection: int | None = Field(None, ge=1, description="close a session after this many messages")
    count: int | None = Field(None, ge=1, description="messages to send (closed loop)")
    duration: float | None = Field(None, gt=0, description="seconds to send for")
    rate: float | None = Field(None, gt=0, description="messages per second: makes the test open loop")
    late_after: float = Field(0.01, ge=0, description="seconds after its due time a message counts as a late start")
    timeout: float = Field(60.0, gt=0, description="seconds one SMTP command may take")
    report_html: Path | None = Field(None, description="write latency plots to this self-contained HTML file")
    retries: int | None = Field(0, ge=0, le=100)

    @model_validator(mode="after")
    def _consistent(self) -> MailLoadSpec:
        if self.rate is not None:
            if self.duration is None:
                raise ValueError("an open-loop test (rate) needs a duration")
            if self.count is not None:
                raise ValueError("give rate and duration, or count: the count of an open-loop test is rate x duration")
        elif self.count is None and self.duration is None:
            raise ValueError("give count or duration (closed loop), or rate and duration (open loop)")
        if self.smtp.tls and self.starttls is True:
            raise ValueError("smtps:// is implicit TLS: starttls must be auto or false")
        if self.report_html is not None and self.report_html.suffix.lower() not in (".html", ".htm"):
            raise ValueError("report_html must name an .html file")
        return self
