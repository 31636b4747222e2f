"""Start-up weight of the FTP path: what importing the FTP kinds pulls in. Every run
pays it, and a 5,000-small-file mirror takes about 1.5 s, so ~30 ms is a cost
(issue 15). aioftp's `__init__` imported importlib.metadata (email, zipfile, csv) and
its server and path I/O modules."""

from __future__ import annotations

import subprocess
import sys

import pytest

#: Modules the FTP path has no use for, each costing milliseconds of import.
UNWANTED = ("aioftp", "importlib.metadata", "email", "zipfile", "csv")


@pytest.mark.parametrize("module", ["xfer.protocols.ftp", "xfer.kinds.ftp_mirror", "xfer.kinds.ftp_pull"])
def test_ftp_path_imports_no_unused_weight(module: str) -> None:
    code = f"import sys, {module}; print(' '.join(m for m in {UNWANTED!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
