"""The Python API without a network: what `import xfer` costs, the documented names,
and bad input as SpecError. Runs against real servers: tests/integration/test_api.py."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import xfer

DOCUMENTED = {"load", "run", "run_sync", "JobSet", "Report", "Event", "SpecError"}


def test_import_xfer_loads_nothing_else() -> None:
    """`xfer run` imports the package first: it must not pull in the scheduler, pydantic,
    PyYAML or rich (start-up time is measured)."""
    probe = (
        "import sys, xfer\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('xfer', 'pydantic', 'yaml', 'rich', 'typing')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['xfer']"


def test_documented_names_are_public() -> None:
    assert DOCUMENTED <= set(xfer.__all__) <= set(dir(xfer))
    for name in DOCUMENTED:
        assert getattr(xfer, name) is not None
    with pytest.raises(AttributeError):
        xfer.no_such_name  # noqa: B018


def test_bad_dict_raises_spec_error_naming_the_key() -> None:
    job = {"name": "m", "kind": "ftp.mirror", "remote": "ftp://127.0.0.1/", "local": "out", "retriez": 1}
    with pytest.raises(xfer.SpecError) as caught:
        xfer.load({"jobs": [job, {"name": "n", "kind": "no.such"}]})
    lines = str(caught.value).splitlines()
    assert lines[0] == "<dict>: jobs[0].retriez: unknown key 'retriez' (did you mean 'retries'?)"
    assert lines[1].startswith("<dict>: jobs[1].kind: unknown kind 'no.such' (one of: ftp.mirror")


def test_problems_of_every_source_in_one_error(tmp_path: Path) -> None:
    """Files name file:line:col as `xfer validate` does; several dicts are numbered."""
    path = tmp_path / "jobs.yaml"
    path.write_text("jobs:\n  - name: x\n    kind: no.such.kind\n")
    with pytest.raises(xfer.SpecError) as caught:
        xfer.load(path, {"jobs": 3})
    first, second = str(caught.value).splitlines()
    assert first.startswith(f"{path}:3:11: jobs[0].kind: unknown kind 'no.such.kind' (one of: ftp.mirror")
    assert second == "<dict 2>: jobs: input should be a valid list, got 3"
    with pytest.raises(TypeError, match="a job file's path or a dict, not list"):
        xfer.load([{"jobs": []}])  # type: ignore[arg-type]


def test_relative_paths_of_a_dict_start_at_base_dir(tmp_path: Path) -> None:
    jobs = xfer.load({"jobs": []}, base_dir=tmp_path)
    assert jobs.names == []
    assert jobs.files[0].state_path == tmp_path.resolve() / ".xfer/state.db"


def test_run_refuses_an_unknown_job_name(tmp_path: Path) -> None:
    jobs = xfer.load({"jobs": []}, base_dir=tmp_path)
    with pytest.raises(xfer.SpecError, match=r"^only: no job named nope \(jobs: \)$"):
        xfer.run_sync(jobs, only=["nope"])
    assert not (tmp_path / ".xfer").exists()
