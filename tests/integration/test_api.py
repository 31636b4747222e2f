"""The Python API against a real FTP server (pyftpdlib on loopback), using only the
names the README documents: `xfer.load`, `xfer.run`, `xfer.run_sync`, `xfer.Event`,
`xfer.Report`, `xfer.SpecError` and the report's `exit_code`, `as_dict`, `write`."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import pytest

import xfer
from tests.integration.ftp_helpers import fill, tree
from tests.servers.ftp import FtpServer, pyftpd  # noqa: F401 - fixture

FILES = {"a.txt": "alpha", "sub/b.bin": bytes(range(256)) * 40}
README = Path(__file__).resolve().parents[2] / "README.md"


def test_load_a_file_and_a_dict_run_and_get_events(pyftpd: FtpServer, tmp_path: Path) -> None:
    fill(pyftpd.root / "pub", FILES)
    (tmp_path / "jobs.yaml").write_text(
        f'jobs:\n  - {{name: from-file, kind: ftp.mirror, remote: "{pyftpd.url("/pub/", with_password=True)}", local: out/file}}\n'
    )
    as_dict = {"jobs": [{"name": "from-dict", "kind": "ftp.mirror", "remote": pyftpd.url("/pub/", with_password=True),
                         "local": "out/dict"}]}
    work = tmp_path / "work"
    jobs = xfer.load(tmp_path / "jobs.yaml", as_dict, base_dir=work)
    assert jobs.names == ["from-file", "from-dict"]
    events: list[xfer.Event] = []

    report = asyncio.run(xfer.run(jobs, on_event=events.append))

    assert isinstance(report, xfer.Report)
    assert report.exit_code == 0
    assert tree(tmp_path / "out/file") == tree(work / "out/dict") == tree(pyftpd.root / "pub")
    totals = report.as_dict()["totals"]
    assert (totals["jobs"], totals["tasks_ok"], totals["tasks_failed"]) == (2, 4, 0)
    assert all(isinstance(event, xfer.Event) for event in events)
    names = [event.name for event in events]
    assert names[0] == "run.started" and names[-1] == "run.finished"
    finished = {(event.job, event.task) for event in events if event.name == "task.finished"}
    assert finished == {(job, path) for job in ("from-file", "from-dict") for path in FILES}
    assert pyftpd.password not in repr(events)

    report.write(tmp_path / "report.json")
    assert json.loads((tmp_path / "report.json").read_text())["exit_code"] == 0


def test_run_sync_only_and_history(pyftpd: FtpServer, tmp_path: Path) -> None:
    """`only` runs one job; a second run is incremental (the state the CLI keeps)."""
    fill(pyftpd.root, FILES)
    remote = pyftpd.url("/", with_password=True)
    jobs = xfer.load({"jobs": [{"name": "alpha", "kind": "ftp.mirror", "remote": remote, "local": "a"},
                               {"name": "beta", "kind": "ftp.mirror", "remote": remote, "local": "b"}]}, base_dir=tmp_path)
    first = xfer.run_sync(jobs, only=["beta"])
    assert [job["name"] for job in first.as_dict()["jobs"]] == ["beta"]
    assert tree(tmp_path / "b") == tree(pyftpd.root) and not (tmp_path / "a").exists()
    again = xfer.run_sync(jobs, only="beta").as_dict()  # one name as a string, not its letters
    assert again["jobs"][0]["tasks"]["planned"] == 0


def test_failed_job_gives_exit_code_1_not_an_exception(pyftpd: FtpServer, tmp_path: Path) -> None:
    jobs = xfer.load({"jobs": [{"name": "m", "kind": "ftp.mirror", "remote": pyftpd.url("/nope/", with_password=True),
                                "local": "m", "retries": 0}]}, base_dir=tmp_path)
    report = xfer.run_sync(jobs)
    assert report.exit_code == 1
    assert "550" in report.as_dict()["jobs"][0]["errors"][0]


def test_readme_example_runs(pyftpd: FtpServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                             capsys: pytest.CaptureFixture[str]) -> None:
    """The README's Python API example, as written, pointed at the test server."""
    section = README.read_text().split("## Python API", 1)[1]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]
    assert "ftp://ftp.example.org/pub/" in example
    fill(pyftpd.root / "pub", FILES)
    monkeypatch.chdir(tmp_path)
    exec(compile(example.replace("ftp://ftp.example.org/pub/", pyftpd.url("/pub/", with_password=True)), "README", "exec"), {})
    out = capsys.readouterr().out
    assert "gnu a.txt ok" in out and out.rstrip().splitlines()[-1].startswith("0 {")
    assert tree(tmp_path / "mirrors/gnu") == tree(pyftpd.root / "pub")
    assert json.loads((tmp_path / "report.json").read_text())["exit_code"] == 0
