"""The `mail.fetch` spec model (validation only: see `engine/kinds/__init__.py`)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from xfer.mail.sending import StartTls
from xfer.spec import JobSpec, size_field, url_field


class MailFetchSpec(JobSpec):
    kind: Literal["mail.fetch"]
    source: url_field("pop3", "pop3s", "imap", "imaps")  # type: ignore[valid-type]
    folders: list[str] | None = Field(
        None, description="IMAP folders to fetch, or ['*'] for all (default: the URL path, else INBOX)"
    )
    starttls: StartTls = Field("auto", description="POP3 STLS / IMAP STARTTLS: true, false or auto")
    dest: Path = Field(description="local directory: one Maildir or NAME.mbox per folder")
    format: Literal["maildir", "mbox"] = "maildir"
    delete_after: bool = Field(False, description="delete from the server what was safely stored")
    since: date | None = Field(None, description="only messages received on or after this day")
    max_size: size_field() | None = Field(None, description="skip (and keep on the server) larger messages")  # type: ignore[valid-type]
    attachments: Path | None = Field(None, description="also save attachments of fetched messages here")
    batch: int = Field(
        500, ge=1, le=1000,
        description="messages per IMAP UID FETCH (one task) or per POP3 store; at most 16 MiB of them",
    )
    command_timeout: float = Field(60.0, gt=0, description="seconds one protocol command may take")

    @field_validator("folders")
    @classmethod
    def _folders(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        if not value:
            raise ValueError("give at least one folder, or leave folders out")
        for name in value:
            if not name or any(ch in name for ch in "\r\n\0"):
                raise ValueError(f"folder {name!r}: a folder name is one non-empty line")
        if "*" in value and len(value) > 1:
            raise ValueError("'*' means every folder: give it alone")
        return value

    @model_validator(mode="after")
    def _coherent(self) -> MailFetchSpec:
        pop3 = self.source.scheme.startswith("pop3")
        if pop3 and (self.folders is not None or self.source.path.strip("/")):
            raise ValueError("POP3 has one mailbox: no folders (use imap:// for folders)")
        if self.source.tls and self.starttls is True:
            raise ValueError(f"{self.source.scheme}:// is implicit TLS: starttls must be auto or false")
        return self
