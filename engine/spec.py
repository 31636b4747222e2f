"""The job-file schema as typed models, and loading files into them.

A job file has `defaults`, `hosts` and `jobs`. Each job kind contributes its own model
(a subclass of `JobSpec` in `engine/kinds/<kind>.py`); the file model is the
discriminated union of all of them on `kind`. Loading gives valid models or one
`SpecError` whose message names file, line, column and key."""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, ClassVar, Union

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
)

from engine.errors import SpecError
from engine.urls import Url, netrc_credentials, parse_url
from engine.yamlload import key_mark, load_yaml, locate

_SIZE_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?(?:/s)?\s*$", re.IGNORECASE)
_JOB_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HOST_KEY = re.compile(r"^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::\d{1,5})?$")


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

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)


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


@dataclass
class JobFile:
    """One loaded job file: its models plus where it lives (relative paths start there)."""

    path: Path
    defaults: Defaults
    hosts: dict[str, HostConfig]
    jobs: list[JobSpec]
    base_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.base_dir = self.path.resolve().parent

    def host_config(self, url: Url) -> HostConfig:
        """The host block for `url` (`host:port` first, then `host`), or an empty one."""
        return self.hosts.get(url.endpoint) or self.hosts.get(url.host) or HostConfig()

    def host_limit(self, url: Url) -> int:
        return self.host_config(url).max_connections or self.defaults.max_connections_per_host

    def with_credentials(self, url: Url) -> Url:
        """`url` with credentials from the URL, else the host block, else ~/.netrc."""
        if url.user and url.password is not None:
            return url
        host = self.host_config(url)
        user = url.user or host.user
        password = url.password or host.password
        if password is None:
            netrc_user, netrc_password = netrc_credentials(url.host)
            if netrc_user and (user is None or user == netrc_user):
                user, password = netrc_user, netrc_password
        return url.with_credentials(user, password)

    def resolve(self, relative: Path | str) -> Path:
        path = Path(relative).expanduser()
        return path if path.is_absolute() else self.base_dir / path

    @property
    def state_path(self) -> Path:
        return self.resolve(self.defaults.state or Path(".xfer/state.db"))


def _named_kinds(data: Any) -> set[str]:
    """The `kind` values a loaded file names (so only those kinds get imported)."""
    jobs = data.get("jobs") if isinstance(data, dict) else None
    if not isinstance(jobs, list):
        return set()
    return {job["kind"] for job in jobs if isinstance(job, dict) and isinstance(job.get("kind"), str)}


def _file_model(kinds: set[str] | None = None) -> type[BaseModel]:
    """The whole-file model: the discriminated union of the named job kinds (of every
    kind when none of the names is known, so the error lists them all)."""
    from engine.kinds import spec_classes

    specs = tuple(spec_classes(kinds)) if kinds is not None else ()
    specs = specs or tuple(spec_classes())
    job_union = Annotated[Union[specs], Field(discriminator="kind")]  # type: ignore[valid-type]
    return create_model(  # type: ignore[call-overload]
        "JobFileModel",
        __base__=StrictModel,
        defaults=(Defaults, Defaults()),
        hosts=(dict[str, HostConfig], {}),
        jobs=(list[job_union], ...),
    )


_REDACTED_KEYS = ("password", "passwd", "secret", "token")


def _shown_input(error: dict[str, Any]) -> str:
    """The offending value for the message, never a password."""
    value = error.get("input")
    loc = [str(part).lower() for part in error.get("loc", ())]
    if any(word in part for part in loc for word in _REDACTED_KEYS):
        return "(hidden)"
    if isinstance(value, str) and "://" in value and "@" in value:
        return "(hidden: URL with credentials)"
    if isinstance(value, (dict, list)):
        return "a mapping" if isinstance(value, dict) else "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _message(error: dict[str, Any], allowed_keys: list[str]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    got = _shown_input(error)
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        close = difflib.get_close_matches(key, allowed_keys, n=1)
        return f"unknown key {key!r}" + (f" (did you mean {close[0]!r}?)" if close else "")
    if kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
        op = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=", "less_than": "<"}[kind]
        bound = next(iter(ctx.values()))
        return f"must be {op} {bound}, got {got}"
    if kind in ("union_tag_invalid", "union_tag_not_found"):
        from engine.kinds import kind_names

        known = ", ".join(kind_names())
        if kind == "union_tag_not_found":
            return f"required key 'kind' is missing (one of: {known})"
        return f"unknown kind {ctx.get('tag')!r} (one of: {known})"
    if kind == "value_error":
        return f"{str(ctx.get('error', error['msg']))}"
    if kind == "literal_error":
        return f"must be {ctx.get('expected')}, got {got}"
    message = error["msg"][0].lower() + error["msg"][1:]
    return f"{message}, got {got}"


def _format_path(path: tuple[Any, ...]) -> str:
    text = ""
    for step in path:
        if isinstance(step, int):
            text += f"[{step}]"
        elif not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(step)):
            text += f"[{str(step)!r}]"
        else:
            text += f".{step}" if text else str(step)
    return text or "(file)"


def _allowed_keys(model: type[BaseModel], data: Any, loc: tuple[Any, ...]) -> list[str]:
    """Keys valid where an unknown key was found, for 'did you mean' hints."""
    if loc[:1] == ("jobs",):
        from engine.kinds import spec_classes

        return sorted({name for spec in spec_classes() for name in spec.model_fields})
    if loc[:1] == ("hosts",):
        return list(HostConfig.model_fields)
    if loc[:1] == ("defaults",):
        return list(Defaults.model_fields)
    return list(model.model_fields)


def parse_job_text(text: str, source: str, path: Path | None = None) -> JobFile:
    """Validate job-file text; raise SpecError naming source:line:col and key."""
    data = load_yaml(text, source)
    if data is None:
        raise SpecError(f"{source}: the file is empty (expected 'jobs:')")
    if not isinstance(data, dict):
        raise SpecError(f"{source}:1:1: expected a mapping with 'jobs:' at the top")
    model = _file_model(_named_kinds(data))
    try:
        loaded = model.model_validate(data)
    except ValidationError as exc:
        error = exc.errors(include_url=False)[0]
        loc = tuple(error["loc"])
        if error["type"] == "union_tag_invalid":
            loc = (*loc, "kind")  # point at the kind value, not at the job
        mark = key_mark(data, loc) if error["type"] == "extra_forbidden" else locate(data, loc)[0]
        _, shown = locate(data, loc)
        where = f"{source}:{mark.line}:{mark.column}" if mark else source
        message = _message(error, _allowed_keys(model, data, loc))
        more = len(exc.errors()) - 1
        suffix = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
        raise SpecError(f"{where}: {_format_path(shown)}: {message}{suffix}") from None
    _check_file(loaded, data, source)
    return JobFile(path=path or Path(source), defaults=loaded.defaults, hosts=loaded.hosts, jobs=list(loaded.jobs))


def _check_file(loaded: Any, data: Any, source: str) -> None:
    """Rules across keys: unique job names, well-formed host keys."""

    def fail(loc: tuple[Any, ...], message: str, *, at_key: bool = False) -> None:
        mark = key_mark(data, loc) if at_key else locate(data, loc)[0]
        where = f"{source}:{mark.line}:{mark.column}" if mark else source
        raise SpecError(f"{where}: {_format_path(loc)}: {message}")

    for key in loaded.hosts:
        if not _HOST_KEY.match(key):
            fail(("hosts", key), "a host key is 'host' or 'host:port'", at_key=True)
    seen: dict[str, int] = {}
    for index, job in enumerate(loaded.jobs):
        if job.name in seen:
            fail(("jobs", index, "name"), f"duplicate job name {job.name!r} (first at jobs[{seen[job.name]}])")
        seen[job.name] = index


def load_job_file(path: Path | str) -> JobFile:
    """Read and validate one job file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SpecError(f"{path}: cannot read: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise SpecError(f"{path}: not UTF-8 text") from None
    return parse_job_text(text, str(path), path)
