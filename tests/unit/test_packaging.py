"""The package installs as `xfer` from the `engine/` folder: every sub-folder must be
listed in pyproject.toml, or a wheel install silently lacks it."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_source_folder_is_a_listed_package() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    folders = {
        ".".join(("xfer", *init.parent.relative_to(ROOT / "engine").parts))
        for init in (ROOT / "engine").rglob("__init__.py")
        if "__pycache__" not in init.parts
    }
    assert folders == listed


def test_installed_under_xfer_only(tmp_path: Path) -> None:
    """Outside the checkout, `xfer` imports and no top-level `engine` exists."""
    probe = "import importlib.util, xfer; print(importlib.util.find_spec('engine') is None, xfer.__name__)"
    out = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "xfer"]
