"""The cyclic collector is off while a command loads and on during a run's work and
afterwards, however the command ended (engine/collector.py): a long run needs it, and
a command run in-process (by a test or the Python API) must not leave it off."""

from __future__ import annotations

import contextlib
import gc
from pathlib import Path

import pytest

from tests.jobrun import unreachable_mirror
from xfer import api, collector
from xfer.cli import main


def test_paused_turns_it_back_on_after_an_error() -> None:
    with pytest.raises(RuntimeError):
        with collector.paused():
            assert not gc.isenabled()
            raise RuntimeError("boom")
    assert gc.isenabled()


def test_off_while_a_run_loads_on_while_it_works(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    jobs = unreachable_mirror(tmp_path)  # fails at once: nothing listens there
    seen: dict[str, bool] = {}
    build, execute = api.Run.build, api.Run.execute

    def spy_build(run: api.Run) -> None:
        seen["building"] = gc.isenabled()
        build(run)

    async def spy_execute(run: api.Run) -> object:
        seen["working"] = gc.isenabled()
        return await execute(run)

    monkeypatch.setattr(api.Run, "build", spy_build)
    monkeypatch.setattr(api.Run, "execute", spy_execute)
    assert main(["run", "--quiet", str(jobs)]) == 1
    assert seen == {"building": False, "working": True}
    assert gc.isenabled()


@pytest.mark.parametrize("argv", [["validate", "missing.yaml"], ["run", "--quiet", "missing.yaml"], ["--version"]])
def test_other_endings_leave_it_on(argv: list[str]) -> None:
    with pytest.raises(SystemExit) if argv == ["--version"] else contextlib.nullcontext():
        main(argv)
    assert gc.isenabled()
