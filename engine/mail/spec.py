"""Spec models both mail kinds use: the SMTP envelope and message sizes (validation
only; what the kinds use at run time is in `engine/mail/sending.py`)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, field_validator

from xfer.spec import StrictModel, parse_size


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
