"""Start-up weight of the FTP path: what importing the FTP kinds pulls in. Every run
pays it, and a 5,000-small-file mirror takes about 1.5 s, so ~30 ms is a cost
(issue 15). aioftp's `__init__` imported importlib.metadata (email, zipfile, csv) and
its server and path I/O modules."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.jobrun import unreachable_mirror

#: Modules the FTP path has no use for, each costing milliseconds of import.
UNWANTED = ("aioftp", "importlib.metadata", "email", "zipfile", "csv")


@pytest.mark.parametrize("module", ["xfer.protocols.ftp", "xfer.kinds.ftp_mirror", "xfer.kinds.ftp_pull"])
def test_ftp_path_imports_no_unused_weight(module: str) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {UNWANTED!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []


#: What a whole `xfer run` of a mirror has no use for: argparse asks shutil for the
#: terminal's width unless told it, tempfile (with random) only made report names,
#: netrc (with shlex) is for users who have one, retries' jitter for failures.
UNWANTED_BY_A_RUN = ("shutil", "bz2", "lzma", "tempfile", "random", "netrc", "shlex")


def test_a_mirror_run_imports_no_unused_weight(tmp_path: Path) -> None:
    jobs = unreachable_mirror(tmp_path)  # fails at once: nothing listens there
    code = (
        "import sys\nfrom xfer.cli import main\n"
        f"code = main(['run', '--quiet', '--report', {str(tmp_path / 'r.json')!r}, {str(jobs)!r}])\n"
        f"print(code, ' '.join(m for m in {UNWANTED_BY_A_RUN!r} if m in sys.modules))"
    )
    env = {**os.environ, "NETRC": str(tmp_path / "no-netrc"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    env.pop("XFER_CACHE", None)
    runs = [subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env) for _ in "12"]
    assert runs[0].stdout.split()[0] == "1"  # validated with pydantic (which loads all of these) and cached
    assert runs[1].stdout.split() == ["1"]  # the job failed again (nothing listens), and nothing unwanted was loaded
