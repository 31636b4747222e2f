"""A server that stops answering in the middle of a session (after login, where the
control channel is ours): the control channel's watchdog ends the wait, the file fails
alone with the command named, and the run goes on."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from tests.integration.ftp_helpers import fill, job_report, run_cli, tree, write_jobs
from tests.servers.ftp import running_pyftpdlib


def test_a_command_left_unanswered_fails_its_file_only(tmp_path: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyftpdlib.handlers import FTPHandler

    def retr(self: Any, file: str) -> None:
        if not file.endswith("silent.txt"):
            FTPHandler.ftp_RETR(self, file)  # else: no reply, ever

    with running_pyftpdlib(tmp_path / "srv", handler_attrs={"ftp_RETR": retr}) as server:
        fill(server.root, {"a.txt": "a", "silent.txt": "never sent", "d/b.txt": "b"})
        path = write_jobs(
            tmp_path,
            f"""
defaults: {{retries: 0, connect_timeout: 1}}
jobs:
  - {{name: m, kind: ftp.mirror, remote: "{server.url('/', with_password=True)}", local: out}}
""",
        )
        code, report, output = run_cli(path)
    assert code == 1, output
    job = job_report(report, "m")
    (error,) = job["errors"]
    assert "RETR /silent.txt" in error and "no answer within 1s" in error
    got = tree(tmp_path / "out")
    assert got.pop("silent.txt.part", b"") == b""  # kept for a resume, never under its name
    assert got == {"a.txt": b"a", "d/b.txt": b"b"}
