"""ftp.pull (named files, globs, pick newest) and active-mode transfers."""

from __future__ import annotations

from pathlib import Path

from tests.integration.ftp_helpers import fill, job_report, run_inprocess, tree, write_jobs
from tests.servers.ftp import FtpServer, ftp_server  # noqa: F401 - fixture

RELEASES = {
    "hello-2.9.tar.gz": "2.9",
    "hello-2.10.tar.gz": "2.10",
    "hello-2.10.tar.gz.sig": "sig 2.10",
    "hello-2.1.tar.gz": "2.1",
    "hello-2.9.tar.gz.sig": "sig 2.9",
    "README": "readme",
    "old/hello-9.9.tar.gz": "not searched: recursive is off",
}


def pull_job(server: FtpServer, tmp: Path, body: str) -> Path:
    return write_jobs(
        tmp,
        f"""
jobs:
  - name: p
    kind: ftp.pull
    remote: "{server.url('/rel/', with_password=True)}"
    local: dl
{body}
""",
    )


def test_pick_newest_by_version_per_pattern(ftp_server: FtpServer, tmp_path: Path) -> None:
    fill(ftp_server.root / "rel", RELEASES)
    ftp_server.chown_root()
    path = pull_job(ftp_server, tmp_path, '    files: ["hello-*.tar.gz", "hello-*.tar.gz.sig"]\n    pick: newest')
    job = job_report(run_inprocess(path), "p")
    assert job["status"] == "ok", job
    assert tree(tmp_path / "dl") == {"hello-2.10.tar.gz": b"2.10", "hello-2.10.tar.gz.sig": b"sig 2.10"}
    assert job_report(run_inprocess(path), "p")["tasks"]["planned"] == 0


def test_named_files_and_recursive_globs(ftp_server: FtpServer, tmp_path: Path) -> None:
    fill(ftp_server.root / "rel", RELEASES)
    ftp_server.chown_root()
    path = pull_job(ftp_server, tmp_path, '    files: ["README", "**/hello-9*"]\n    recursive: true')
    job = job_report(run_inprocess(path), "p")
    assert job["status"] == "ok", job
    assert tree(tmp_path / "dl") == {"README": b"readme", "old/hello-9.9.tar.gz": b"not searched: recursive is off"}


def test_active_mode_transfers(ftp_server: FtpServer, tmp_path: Path) -> None:
    fill(ftp_server.root / "rel", {"a.bin": bytes(range(256)) * 1000, "b.txt": "b"})
    ftp_server.chown_root()
    path = write_jobs(
        tmp_path,
        f"""
hosts:
  "{ftp_server.host}:{ftp_server.port}":
    passive: false
jobs:
  - name: p
    kind: ftp.pull
    remote: "{ftp_server.url('/rel/', with_password=True)}"
    local: dl
""",
    )
    job = job_report(run_inprocess(path), "p")
    assert job["status"] == "ok", job
    assert tree(tmp_path / "dl") == {"a.bin": bytes(range(256)) * 1000, "b.txt": b"b"}
