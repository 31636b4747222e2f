"""Start-up is part of every cron run: a run that draws nothing on a terminal imports
no rich, and only a load test that writes its HTML report imports matplotlib."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import xfer

#: `xfer run`, then the top-level modules the process imported (JSON, on the last line).
RUN = """\
import json, sys
from xfer.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted({name.split(".")[0] for name in sys.modules})}))
"""

#: A load test aimed at a port where nothing listens: it runs, counts, and ends at once.
JOBS = """\
jobs:
  - name: load
    kind: mail.load
    smtp: smtp://127.0.0.1:1
    envelope: {{from: a@example.org, to: b@example.org}}
    count: 2
{extra}"""


def _modules(tmp_path: Path, *args: str, extra: str = "") -> tuple[set[str], str]:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS.format(extra=extra))
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=str(Path(xfer.__file__).parent.parent))
    done = subprocess.run([sys.executable, "-c", RUN, "run", str(path), *args], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=120, check=True)
    *printed, last = done.stdout.splitlines()
    result = json.loads(last)
    assert result["code"] == 0, done.stderr
    return set(result["modules"]), "\n".join(printed)


@pytest.mark.parametrize("args", [("--quiet",), ("--json",), ()], ids=["quiet", "json", "plain"])
def test_a_run_off_a_terminal_imports_neither_rich_nor_matplotlib(tmp_path: Path, args: tuple[str, ...]) -> None:
    modules, printed = _modules(tmp_path, *args)
    assert not modules & {"rich", "matplotlib", "numpy"}
    if not args:  # the plain summary still says what happened, in words
        assert "load: 2 sent, 0 accepted, 2 temporary failures (no reply)" in printed


def test_matplotlib_is_imported_to_write_the_load_report(tmp_path: Path) -> None:
    modules, _ = _modules(tmp_path, "--quiet", extra="    report_html: load.html\n")
    assert "matplotlib" in modules and "rich" not in modules
    assert (tmp_path / "load.html").read_text().count("<svg") == 3
