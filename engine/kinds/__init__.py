"""The registry of job kinds: every module in this package that defines a `Job`
subclass with a `kind` is one. Adding a kind is adding a module here; the file
schema, `xfer plan` and the scheduler find it without other edits. A module may
also define `register_cli(subparsers)` to add its own commands (`xfer news ...`)."""

from __future__ import annotations

import argparse
import importlib
import pkgutil
from functools import cache
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from engine.job import Job
    from engine.spec import JobSpec


@cache
def _modules() -> tuple[ModuleType, ...]:
    return tuple(
        importlib.import_module(f"{__name__}.{info.name}")
        for info in sorted(pkgutil.iter_modules(__path__), key=lambda info: info.name)
        if not info.name.startswith("_")
    )


@cache
def _jobs() -> dict[str, type[Job]]:
    from engine.job import Job

    found: dict[str, type[Job]] = {}
    for module in _modules():
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Job) and getattr(value, "kind", None):
                if value.__module__ == module.__name__:
                    found[value.kind] = value
    return found


def kind_names() -> list[str]:
    return sorted(_jobs())


def spec_classes() -> list[type[JobSpec]]:
    return [job.Spec for _, job in sorted(_jobs().items())]


def job_class(kind: str) -> type[Job]:
    return _jobs()[kind]


def register_cli(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    for module in _modules():
        register = getattr(module, "register_cli", None)
        if register is not None:
            register(subparsers)
