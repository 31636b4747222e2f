"""Job-file pieces both mail kinds use: the SMTP envelope, STARTTLS choice, sizes."""

from __future__ import annotations

import random
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, field_validator

from engine.protocols.smtp import SmtpConnector
from engine.spec import JobFile, StrictModel, parse_size
from engine.urls import Url

#: `starttls:` in a job file: true (required), false (never), auto (when offered).
StartTls = bool | Literal["auto"]


def _address(value: Any) -> Any:
    if isinstance(value, str) and any(ch in value for ch in "\r\n\0<> "):
        raise ValueError("an envelope address is a bare address like probe@example.org")
    return value


Address = Annotated[str, BeforeValidator(_address), Field(min_length=1)]


class Envelope(StrictModel):
    """The SMTP envelope (MAIL FROM / RCPT TO); header From/To are set apart from it."""

    sender: Address = Field(alias="from", description="MAIL FROM address")
    to: list[Address] = Field(min_length=1, description="RCPT TO addresses")

    @field_validator("to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


def _size_mix(value: Any) -> Any:
    """`4k` (fixed) or `{1k: 70, 64k: 25, 1M: 5}` (size: weight) -> [(size, weight), ...]."""
    if isinstance(value, dict):
        mix = [(parse_size(size), float(weight)) for size, weight in value.items()]
        if not mix or any(size <= 0 or weight <= 0 for size, weight in mix):
            raise ValueError("a size mix maps sizes > 0 to weights > 0, like {1k: 70, 64k: 30}")
        return mix
    size = parse_size(value)
    if size <= 0:
        raise ValueError("must be > 0")
    return [(size, 1.0)]


SizeMix = Annotated[list[tuple[int, float]], BeforeValidator(_size_mix)]


class SizeChooser:
    """Draws message sizes from a mix, reproducibly (seeded) so runs compare."""

    def __init__(self, mix: list[tuple[int, float]], seed: int = 0) -> None:
        self.sizes = [size for size, _ in mix]
        self.weights = [weight for _, weight in mix]
        self._rng = random.Random(seed)

    def next(self) -> int:
        if len(self.sizes) == 1:
            return self.sizes[0]
        return self._rng.choices(self.sizes, self.weights)[0]


def smtp_connector(file: JobFile, url: Url, starttls: StartTls, timeout: float) -> SmtpConnector:
    """The connector for a job's `smtp:` URL, with credentials from URL, host block or netrc."""
    url = file.with_credentials(url)
    return SmtpConnector(
        url, file.host_config(url), starttls=None if starttls == "auto" else starttls, timeout=timeout
    )
