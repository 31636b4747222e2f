"""The `mail.sessions` spec model (validation only: see `engine/kinds/__init__.py`)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator

from xfer.mail.sending import StartTls
from xfer.mail.sessions_steps import IMAP_STEPS, POP3_STEPS
from xfer.mail.spec import Envelope, SizeMix
from xfer.spec import JobSpec, StrictModel, url_field

_FLAG_CHARS = frozenset("\\$" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")


class SessionUsers(StrictModel):
    """Who logs in: `pattern` ({n} from 1 to `count`) or `file` (`address [password]` a line)."""

    pattern: str | None = Field(None, description="address pattern with {n}, like user{n}@example.test")
    count: int | None = Field(None, ge=1, le=1_000_000, description="users made from the pattern")
    file: Path | None = Field(None, description="user list, relative to the job file")
    password: SecretStr | None = Field(None, description="password of every user (of file lines without one)")

    @model_validator(mode="after")
    def _one_source(self) -> SessionUsers:
        if (self.pattern is None) == (self.file is None):
            raise ValueError("give pattern (with count) or file")
        if self.pattern is not None:
            if "{n}" not in self.pattern or self.count is None:
                raise ValueError("a pattern contains {n} and needs count")
            if self.password is None:
                raise ValueError("pattern users need a password (${VAR} reads it from the environment)")
        elif self.count is not None:
            raise ValueError("count goes with pattern; a file lists its users")
        return self


class Delivery(StrictModel):
    """SMTP delivery while the sessions run; readers (one IMAP session per recipient)
    watch for each message and the report gives accepted -> visible delays."""

    smtp: url_field("smtp", "smtps")  # type: ignore[valid-type]
    starttls: StartTls = Field("auto", description="true: require STARTTLS; false: never; auto: when offered")
    envelope: Envelope = Field(description="recipients are taken in turn; each must be one of the users")
    rate: float = Field(gt=0, description="messages per second (open loop)")
    count: int = Field(ge=1, le=1_000_000, description="messages to send")
    size: SizeMix = Field("4k", description="message size, or a mix {size: weight}")
    timeout: float = Field(30.0, gt=0, description="seconds to wait after the last send for it to show")
    poll_interval: float = Field(0.05, gt=0, le=10, description="seconds between two looks of a reader")


class MailSessionsSpec(JobSpec):
    kind: Literal["mail.sessions"]
    server: url_field("imap", "imaps", "pop3", "pop3s")  # type: ignore[valid-type]
    starttls: StartTls = Field("auto", description="IMAP STARTTLS / POP3 STLS: true requires, false never, auto")
    users: SessionUsers
    sessions: int = Field(1, ge=1, le=10000, description="sessions at once (closed loop) / at most in flight (open)")
    logins_per_s: float | None = Field(None, gt=0, description="new sessions per second: makes the test open loop")
    count: int | None = Field(None, ge=1, description="sessions to run (closed loop)")
    duration: float | None = Field(None, gt=0, description="seconds to start sessions for")
    commands: int = Field(5, ge=0, le=100000, description="weighted steps per session, after the opening")
    weights: dict[str, float] | None = Field(None, description="step: weight; default: read-only steps")
    think_time: float = Field(0.0, ge=0, description="seconds between two steps of a session")
    store_flag: str = Field("\\Flagged", description="the flag a store step adds")
    seed: int = Field(0, description="seeds the steps' choices, so runs compare")
    late_after: float = Field(0.01, ge=0, description="seconds after its due time a session counts as a late start")
    journal: Path | None = Field(None, description="JSON lines of every step that read or changed a message")
    timeout: float = Field(60.0, gt=0, description="seconds one command may take")
    delivery: Delivery | None = None
    retries: int | None = Field(0, ge=0, le=100)

    @model_validator(mode="after")
    def _consistent(self) -> MailSessionsSpec:
        if self.logins_per_s is not None:
            if self.duration is None or self.count is not None:
                raise ValueError("an open-loop test (logins_per_s) takes a duration, not a count")
        elif self.count is None and self.duration is None:
            raise ValueError("give count or duration (closed loop), or logins_per_s and duration (open loop)")
        steps = POP3_STEPS if self.server.scheme.startswith("pop3") else IMAP_STEPS
        unknown = sorted(set(self.weights or {}) - set(steps))
        if unknown:
            raise ValueError(f"weights: unknown step {unknown[0]!r} for {self.server.scheme} (steps: {', '.join(steps)})")
        if any(weight < 0 for weight in (self.weights or {}).values()):
            raise ValueError("weights are >= 0")
        if not set(self.store_flag) <= _FLAG_CHARS or not self.store_flag:
            raise ValueError("store_flag is one flag like \\Flagged or $Label")
        if self.server.tls and self.starttls is True:
            raise ValueError(f"{self.server.scheme}:// is implicit TLS: starttls must be auto or false")
        if self.delivery is not None and self.server.scheme.startswith("pop3"):
            raise ValueError("delivery readers watch IMAP mailboxes: give an imap:// or imaps:// server")
        return self
