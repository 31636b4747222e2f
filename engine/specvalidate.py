"""Validating job-file text: YAML with source marks, then the models of the kinds it names.

The file model is the discriminated union (on `kind`) of the spec models of the kinds
the file names, found through the kind registry; only those kinds are imported.
An invalid file gives one `SpecError` with a line per problem, each naming file, line,
column and key (unknown keys first, with a "did you mean"). A valid one is turned into
records at once (`to_record`): runs never see a pydantic model."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Annotated, Any, Union

from pydantic import BaseModel, Field, SecretStr, ValidationError, create_model

from xfer.errors import SpecError
from xfer.jobfile import JobFile
from xfer.kinds import kind_names, spec_classes
from xfer.records import Record
from xfer.spec import Defaults, HostConfig, StrictModel
from xfer.urls import Secret
from xfer.yamlload import key_mark, load_yaml, locate

#: Problems listed for one file; the rest are counted.
MAX_ERRORS = 20

_HOST_KEY = re.compile(r"^(?:\[[0-9a-fA-F:.]+\]|[A-Za-z0-9._-]+)(?::\d{1,5})?$")
_REDACTED_KEYS = ("password", "passwd", "secret", "token")


def _named_kinds(data: Any) -> set[str]:
    """The `kind` values a loaded file names (so only those kinds get imported)."""
    jobs = data.get("jobs") if isinstance(data, dict) else None
    if not isinstance(jobs, list):
        return set()
    return {job["kind"] for job in jobs if isinstance(job, dict) and isinstance(job.get("kind"), str)}


def _file_model(kinds: set[str]) -> type[BaseModel]:
    """The whole-file model: the discriminated union of the named job kinds (of every
    kind when none of the names is known, so the error lists them all)."""
    specs = tuple(spec_classes(kinds)) or tuple(spec_classes())
    job_union = Annotated[Union[specs], Field(discriminator="kind")]  # type: ignore[valid-type]
    return create_model(  # type: ignore[call-overload]
        "JobFileModel",
        __base__=StrictModel,
        defaults=(Defaults, Defaults()),
        hosts=(dict[str, HostConfig], {}),
        jobs=(list[job_union], ...),
    )


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


def _model_keys(model: type[BaseModel]) -> list[str]:
    return [info.alias or name for name, info in model.model_fields.items()]


def _allowed_keys(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Keys valid where an unknown key was found, for 'did you mean' hints: those of
    the model at that place (for a job, its kind's model, nested models followed)."""
    if loc[:1] == ("jobs",) and len(loc) >= 4:
        specs = spec_classes([str(loc[2])])
        if not specs:
            return []
        current: type[BaseModel] = specs[0]
        for step in loc[3:-1]:
            info = current.model_fields.get(str(step))
            inner = info.annotation if info else None
            if not (isinstance(inner, type) and issubclass(inner, BaseModel)):
                break
            current = inner
        return _model_keys(current)
    if loc[:1] == ("hosts",):
        return _model_keys(HostConfig)
    if loc[:1] == ("defaults",):
        return _model_keys(Defaults)
    return _model_keys(model)


def _error_line(error: dict[str, Any], model: type[BaseModel], data: Any, source: str) -> str:
    loc = tuple(error["loc"])
    if error["type"] == "union_tag_invalid":
        loc = (*loc, "kind")  # point at the kind value, not at the job
    mark = key_mark(data, loc) if error["type"] == "extra_forbidden" else locate(data, loc)[0]
    _, shown = locate(data, loc)
    where = f"{source}:{mark.line}:{mark.column}" if mark else source
    return f"{where}: {_format_path(shown)}: {_message(error, _allowed_keys(model, loc))}"


def _raise_all(lines: list[str], source: str) -> None:
    """One SpecError, a line per problem: at most MAX_ERRORS, then a count of the rest."""
    shown = list(dict.fromkeys(lines))
    more = len(shown) - MAX_ERRORS
    if more > 0:
        shown = [*shown[:MAX_ERRORS], f"{source}: ... and {more} more error{'s' if more > 1 else ''}"]
    raise SpecError("\n".join(shown))


def _validate(data: Any, source: str) -> Any:
    model = _file_model(_named_kinds(data))
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Unknown keys first: a typo usually explains the "missing" error beside it.
        errors = sorted(exc.errors(include_url=False), key=lambda error: error["type"] != "extra_forbidden")
        _raise_all([_error_line(error, model, data, source) for error in errors], source)


def _check_file(loaded: Any, data: Any, source: str) -> None:
    """Rules across keys: unique job names, well-formed host keys."""
    lines = []

    def problem(loc: tuple[Any, ...], message: str, *, at_key: bool = False) -> None:
        mark = key_mark(data, loc) if at_key else locate(data, loc)[0]
        where = f"{source}:{mark.line}:{mark.column}" if mark else source
        lines.append(f"{where}: {_format_path(loc)}: {message}")

    for key in loaded.hosts:
        if not _HOST_KEY.match(key):
            problem(("hosts", key), "a host key is 'host' or 'host:port'", at_key=True)
    seen: dict[str, int] = {}
    for index, job in enumerate(loaded.jobs):
        if job.name in seen:
            problem(("jobs", index, "name"), f"duplicate job name {job.name!r} (first at jobs[{seen[job.name]}])")
        seen.setdefault(job.name, index)
    if lines:
        _raise_all(lines, source)


def to_record(value: Any) -> Any:
    """`value` with every model turned into a `Record` and every `SecretStr` into a
    `Secret`, in lists, tuples and dicts too; other values as they are."""
    if isinstance(value, BaseModel):
        model = type(value)
        fields = {name: to_record(getattr(value, name)) for name in model.model_fields}
        return Record(f"{model.__module__}.{model.__qualname__}", fields)
    if isinstance(value, SecretStr):
        return Secret(value.get_secret_value())
    if isinstance(value, (list, tuple)):
        return type(value)(to_record(item) for item in value)
    if isinstance(value, dict):
        return {key: to_record(item) for key, item in value.items()}
    return value


def parse(text: str, source: str, path: Path | None = None, env_used: set[str] | None = None) -> tuple[JobFile, Any]:
    """The job file and the loaded YAML data; the names of the environment variables
    read are added to `env_used`. Raises SpecError naming source:line:col and key."""
    data = load_yaml(text, source, env_used)
    if data is None:
        raise SpecError(f"{source}: the file is empty (expected 'jobs:')")
    if not isinstance(data, dict):
        raise SpecError(f"{source}:1:1: expected a mapping with 'jobs:' at the top")
    return validate_data(data, source, path or Path(source)), data


def validate_data(data: dict[str, Any], source: str, path: Path) -> JobFile:
    """The job file from loaded data: YAML with marks, or a caller's plain dict (its
    errors then name `source` and the key path, without line and column)."""
    loaded = _validate(data, source)
    _check_file(loaded, data, source)
    return JobFile(
        path=path,
        defaults=to_record(loaded.defaults),
        hosts=to_record(loaded.hosts),
        jobs=[to_record(job) for job in loaded.jobs],
    )
