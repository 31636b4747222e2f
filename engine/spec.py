"""The job-file schema as typed models.

A job file has `defaults`, `hosts` and `jobs`. Each job kind contributes its own model
(a subclass of `JobSpec` in `engine/kinds/_spec_<kind>.py`); `engine/specload.py` puts
them together and loads files. This module imports no kind, so spec modules can import it.

These models are for validation only: a validated file is turned into plain records
(`engine/records.py`) held by a `JobFile` (`engine/jobfile.py`, re-exported here), and
runtime code never imports this module, so a run whose job file comes from the cache
(`engine/speccache.py`) imports no pydantic. Models build their pydantic schemas on
first validation, not when the class is created (`defer_build`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from xfer.jobfile import JobFile  # noqa: F401 - re-exported for callers of the old place
from xfer.urls import Url, parse_url

_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?(?:/s)?\s*$", re.IGNORECASE)
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def parse_size(value: Any) -> int:
    """`4096`, `'64k'`, `'1.5 MiB'`, `'10M/s'` -> bytes (binary units)."""
    if isinstance(value, bool):
        raise ValueError("expected a size like 4096, '64k' or '10M'")
    if isinstance(value, (int, float)):
        return int(value)
    match = _SIZE_PATTERN.match(str(value))
    if not match:
        raise ValueError("expected a size like 4096, '64k' or '10M'")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2).lower()])


def _positive_size(value: Any) -> int:
    size = parse_size(value)
    if size <= 0:
        raise ValueError("must be > 0")
    return size


class StrictModel(BaseModel):
    """Unknown keys are errors: a typo must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True, defer_build=True)


class Defaults(StrictModel):
    """Settings every job and host inherits unless it says otherwise."""

    connect_timeout: float = Field(30.0, gt=0, description="seconds to open and log in a connection")
    task_timeout: float | None = Field(3600.0, gt=0, description="seconds one task may take (one file, one range)")
    retries: int = Field(3, ge=0, le=100, description="retries of a task after a transient error")
    retry_backoff: float = Field(0.5, ge=0, description="first retry delay in seconds; doubles each time, with jitter")
    retry_backoff_max: float = Field(30.0, ge=0)
    max_connections_per_host: int = Field(4, ge=1, le=1000, description="per-host limit for hosts without one")
    max_connections: int = Field(64, ge=1, le=10000, description="connections in use across all hosts")
    grace_period: float = Field(10.0, ge=0, description="seconds running tasks get to finish after Ctrl-C/SIGTERM")
    state: Path | None = Field(None, description="SQLite state file; default .xfer/state.db beside the job file")


class HostConfig(StrictModel):
    """Per-host settings, keyed by `host` or `host:port` as written in job URLs."""

    max_connections: int | None = Field(None, ge=1, le=1000)
    user: str | None = None
    password: SecretStr | None = None
    tls_verify: bool = Field(True, description="verify the server certificate (FTPS, SMTPS, POP3S, IMAPS, NNTPS)")
    ca_file: Path | None = Field(None, description="extra CA bundle (PEM) to verify against")
    passive: bool = Field(True, description="FTP data connections by EPSV/PASV; false for active mode")
    rate_limit: int | None = Field(None, description="bytes/s for all transfers to this host")
    connect_timeout: float | None = Field(None, gt=0)
    allow_plaintext_auth: bool = Field(
        False, description="send credentials to this host without TLS (it is not on loopback and has no TLS)"
    )

    @field_validator("rate_limit", mode="before")
    @classmethod
    def _rate(cls, value: Any) -> Any:
        return None if value is None else _positive_size(value)


class JobSpec(StrictModel):
    """Keys every job has; each kind subclasses this with its own `kind` literal."""

    kind_name: ClassVar[str] = ""

    name: str
    kind: str
    max_connections: int | None = Field(None, ge=1, le=1000, description="this job's own connection bound")
    retries: int | None = Field(None, ge=0, le=100)
    task_timeout: float | None = Field(None, gt=0)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _JOB_NAME.match(value):
            raise ValueError("a job name is letters, digits, '.', '_' and '-', starting with a letter or digit")
        return value


def url_field(*schemes: str) -> Any:
    """A pydantic type for a URL restricted to `schemes`."""
    from pydantic import BeforeValidator

    allowed = frozenset(schemes)
    return Annotated[Url, BeforeValidator(lambda value: value if isinstance(value, Url) else parse_url(value, allowed))]


def size_field() -> Any:
    """A pydantic type for sizes written as `4096`, `'64k'`, `'10M'`."""
    from pydantic import BeforeValidator

    return Annotated[int, BeforeValidator(parse_size), Field(ge=0)]


def __getattr__(name: str) -> Any:
    """`load_job_file` and `parse_job_text` live in `engine.specload` (which imports
    the kind registry); callers that import them from here still find them."""
    if name in ("load_job_file", "parse_job_text"):
        from xfer import specload

        return getattr(specload, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
