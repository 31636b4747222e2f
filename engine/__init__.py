"""xfer: an asyncio transfer engine for FTP, NNTP and mail, driven by YAML job files.

The Python API (README, "Python API"): `load`, `run`, `run_sync`, `JobSet`, `Report`,
`Event`, `SpecError`. They are imported on first use (module `__getattr__`): every
`xfer` command imports this package, and its start-up time is measured."""

from __future__ import annotations

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_LAZY = {
    "load": "xfer.api",
    "run": "xfer.api",
    "run_sync": "xfer.api",
    "JobSet": "xfer.api",
    "Report": "xfer.report",
    "Event": "xfer.events",
    "SpecError": "xfer.errors",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'xfer' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
