"""The registry of job kinds: kind `a.b_c` is the `Job` subclass in module
`engine/kinds/a_b_c.py` (the first dot becomes an underscore). Adding a kind is adding
a module here; the file schema, `xfer plan` and the scheduler find it without other
edits. A module may also define `register_cli(subparsers)` to add its own commands
(`xfer news ...`).

Modules are imported only when a job file names their kind, so `xfer run` of an FTP
job never pays for loading the mail and news code (start-up time is part of every
cron run and of every no-op mirror)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from collections.abc import Iterable
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.job import Job
    from engine.spec import JobSpec

_loaded: dict[str, type[Job]] = {}


@cache
def _module_names() -> tuple[str, ...]:
    return tuple(sorted(info.name for info in pkgutil.iter_modules(__path__) if not info.name.startswith("_")))


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
        from engine.job import Job

        module = importlib.import_module(f"{__name__}.{module_name}")
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Job) and getattr(value, "kind", None) == kind:
                _loaded[kind] = value
        if kind not in _loaded:
            raise KeyError(kind)
    return _loaded[kind]


def register(job: type[Job]) -> None:
    """Add a kind defined outside this package (tests use this)."""
    _loaded[job.kind] = job


def unregister(kind: str) -> None:
    _loaded.pop(kind, None)


def spec_classes(kinds: Iterable[str] | None = None) -> list[type[JobSpec]]:
    """The spec models of `kinds` (unknown names are skipped), or of every kind."""
    wanted = kind_names() if kinds is None else sorted(set(kinds) & set(kind_names()))
    return [job_class(kind).Spec for kind in wanted]


def register_cli(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Let every kind module add its commands (imports them all: only for those commands)."""
    for name in _module_names():
        module = importlib.import_module(f"{__name__}.{name}")
        register_module_cli = getattr(module, "register_cli", None)
        if register_module_cli is not None:
            register_module_cli(subparsers)
