"""The spec options every FTP kind has (validation only: see `engine/kinds/__init__.py`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from xfer.kinds._pathfilter import check_patterns
from xfer.spec import JobSpec, parse_size
from xfer.urls import Url


class FtpJobSpec(JobSpec):
    """Keys every FTP kind has."""

    tls: Literal["explicit", "implicit"] | None = Field(
        None, description="ftps:// only: explicit AUTH TLS (default) or implicit TLS from the start (port 990)"
    )
    preserve_mtime: bool = Field(True, description="give local files the server's modification time")
    rate_limit: int | None = Field(None, description="bytes/s for this job's transfers, e.g. '5M'")
    symlinks: Literal["skip", "follow"] = Field("skip", description="remote symlinks: ignore them, or fetch what they point to")
    exclude: list[str] = Field([], description="glob patterns never transferred (they win over include)")

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        if value is None:
            return None
        size = parse_size(value)
        if size <= 0:
            raise ValueError("must be > 0")
        return size

    @field_validator("exclude")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        return check_patterns(value)

    def check_tls(self, url: Url) -> None:
        if self.tls is not None and url.scheme != "ftps":
            raise ValueError(f"tls: {self.tls} needs an ftps:// URL")
