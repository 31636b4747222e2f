"""The registry of job kinds: kind `a.b_c` is the `Job` subclass in module
`engine/kinds/a_b_c.py` (the first dot becomes an underscore) and its spec model, the
`JobSpec` subclass whose `kind` is `Literal["a.b_c"]`, in `engine/kinds/_spec_a_b_c.py`.
Adding a kind is adding those two modules here; the file schema, `xfer plan` and the
scheduler find it without other edits. A kind module may also define
`register_cli(subparsers)` to add its own commands (`xfer news ...`).

Modules are imported only when a job file names their kind, so `xfer run` of an FTP
job never pays for loading the mail and news code (start-up time is part of every
cron run and of every no-op mirror). Spec modules (pydantic) are imported only to
validate a file; the kind module must not import its spec module: a run gets its
spec as a record (`engine/records.py`) and, from the cache, imports no pydantic."""

from __future__ import annotations

import argparse
import importlib
import os
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING, get_args

if TYPE_CHECKING:
    from xfer.job import Job
    from xfer.spec import JobSpec

_loaded: dict[str, type[Job]] = {}
#: Kinds added from outside this package (`register`): their Job class names its
#: spec model as `Spec`.
_outside: set[str] = set()


@cache
def _module_names() -> tuple[str, ...]:
    """The kind modules of this package, from a directory listing (pkgutil's walk
    imports ~10 ms of machinery on every start)."""
    names = set()
    for folder in __path__:
        with os.scandir(folder) as entries:
            names.update(
                entry.name[:-3] for entry in entries
                if entry.name.endswith(".py") and not entry.name.startswith("_") and entry.is_file()
            )
    return tuple(sorted(names))


def _module_for(kind: str) -> str:
    return kind.replace(".", "_", 1)


def kind_names() -> list[str]:
    """Every kind, known from the module names alone (nothing is imported)."""
    return sorted({name.replace("_", ".", 1) for name in _module_names()} | set(_loaded))


def job_class(kind: str) -> type[Job]:
    """The Job class of `kind`, importing its module on first use; KeyError if none."""
    if kind not in _loaded:
        module_name = _module_for(kind)
        if module_name not in _module_names():
            raise KeyError(kind)
        from xfer.job import Job

        module = importlib.import_module(f"{__name__}.{module_name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Job) and getattr(value, "kind", None) == kind:
                _loaded[kind] = value
        if kind not in _loaded:
            raise KeyError(kind)
    return _loaded[kind]


def register(job: type[Job]) -> None:
    """Add a kind defined outside this package (tests use this); its Job class
    names its spec model as `Spec`."""
    _loaded[job.kind] = job
    _outside.add(job.kind)


def unregister(kind: str) -> None:
    _loaded.pop(kind, None)
    _outside.discard(kind)


def spec_class(kind: str) -> type[JobSpec]:
    """The spec model of `kind`, for validation (imports pydantic); KeyError if none."""
    if kind in _outside:
        return _loaded[kind].Spec  # type: ignore[attr-defined, no-any-return]
    module_name = _module_for(kind)
    if module_name not in _module_names():
        raise KeyError(kind)
    from xfer.spec import JobSpec

    module = importlib.import_module(f"{__name__}._spec_{module_name}")
    for value in vars(module).values():
        if isinstance(value, type) and issubclass(value, JobSpec) and "kind" in value.model_fields:
            if get_args(value.model_fields["kind"].annotation) == (kind,):
                return value
    raise KeyError(kind)


def spec_classes(kinds: Iterable[str] | None = None) -> list[type[JobSpec]]:
    """The spec models of `kinds` (unknown names are skipped), or of every kind."""
    wanted = kind_names() if kinds is None else sorted(set(kinds) & set(kind_names()))
    return [spec_class(kind) for kind in wanted]


def register_cli(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Let every kind module add its commands (imports them all: only for those commands)."""
    for name in _module_names():
        module = importlib.import_module(f"{__name__}.{name}")
        register_module_cli = getattr(module, "register_cli", None)
        if register_module_cli is not None:
            register_module_cli(subparsers)
