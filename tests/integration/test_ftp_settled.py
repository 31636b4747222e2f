"""ftp.mirror's shortcut for unchanged directories (engine/kinds/_ftp_settled.py), against
real servers: a directory whose listing and local files are as the last run left them
is not compared file by file, and anything that changed still takes the full path."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

from tests.integration.ftp_helpers import fill, job_report, run_inprocess, tree, write_jobs
from tests.servers.ftp import FtpServer, ftp_server, vsftpd  # noqa: F401 - fixtures

FILES = {
    "top.txt": "top\n",
    "src/main.py": "print('hi')\n",
    "src/util.py": "x = 1\n" * 100,
    "src/notes.log": "noise\n",
    "src/été 🎉.txt": "non-ASCII names are matched exactly\n",
    "deep/a/b/data.bin": os.urandom(50_000),
}
DIRS = 5  # the top, src, deep, deep/a, deep/a/b


def mirror(server: FtpServer, tmp: Path, extra: str = "") -> Path:
    return write_jobs(
        tmp,
        f"""
jobs:
  - name: m
    kind: ftp.mirror
    remote: "{server.url('/', with_password=True)}"
    local: out
{extra}
""",
    )


@pytest.fixture
def mirrored(ftp_server: FtpServer, tmp_path: Path) -> tuple[FtpServer, Path]:
    """A server with FILES, mirrored once into tmp_path/out."""
    fill(ftp_server.root, FILES)
    ftp_server.chown_root()
    path = mirror(ftp_server, tmp_path)
    assert job_report(run_inprocess(path), "m")["tasks"]["ok"] == len(FILES)
    return ftp_server, path


def rerun(path: Path, **options: object) -> dict:
    return job_report(run_inprocess(path, **options), "m")


def test_rerun_skips_every_unchanged_directory(mirrored: tuple[FtpServer, Path]) -> None:
    _, path = mirrored
    for _ in range(2):
        job = rerun(path)
        assert job["tasks"]["planned"] == 0
        assert job["summary"]["unchanged_dirs"] == DIRS
        assert job["summary"]["up_to_date"] == len(FILES)
        assert job["summary"]["files"] == len(FILES) and job["summary"]["dirs"] == DIRS


def test_remote_change_is_fetched_and_the_directory_settles_again(mirrored: tuple[FtpServer, Path], tmp_path: Path) -> None:
    server, path = mirrored
    (server.root / "src/main.py").write_text("print('changed, and longer')\n")
    job = rerun(path)
    assert [task["label"] for task in job["task_list"]] == ["src/main.py"]
    assert job["summary"]["unchanged_dirs"] == DIRS - 1
    assert (tmp_path / "out/src/main.py").read_text() == "print('changed, and longer')\n"
    assert rerun(path)["summary"]["unchanged_dirs"] == DIRS


@pytest.mark.parametrize("change", ["deleted", "rewritten", "touched", "replaced_by_dir"])
def test_local_change_in_an_unchanged_directory_is_repaired(
    mirrored: tuple[FtpServer, Path], tmp_path: Path, change: str
) -> None:
    _, path = mirrored
    local = tmp_path / "out/src/util.py"
    if change == "deleted":
        local.unlink()
    elif change == "rewritten":
        local.write_text("local edit\n")
    elif change == "touched":
        os.utime(local, ns=(1_000_000_000, 1_000_000_000))
    else:
        local.unlink()
        local.mkdir()
    job = rerun(path)
    assert job["summary"]["unchanged_dirs"] == DIRS - 1
    if change == "replaced_by_dir":
        assert job["tasks"]["failed"] == 1  # a directory in the way is not removed
        return
    assert [task["label"] for task in job["task_list"]] == ["src/util.py"]
    assert tree(tmp_path / "out") == {n: (v.encode() if isinstance(v, str) else v) for n, v in FILES.items()}


def test_new_filters_take_the_full_path(mirrored: tuple[FtpServer, Path], tmp_path: Path) -> None:
    server, _ = mirrored
    narrowed = mirror(server, tmp_path, '    exclude: ["*.log"]')
    job = rerun(narrowed)
    assert job["summary"]["unchanged_dirs"] == 0  # the options key every digest
    assert job["summary"]["up_to_date"] == len(FILES) - 1
    assert rerun(narrowed)["summary"]["unchanged_dirs"] == DIRS


def test_force_never_takes_the_shortcut(mirrored: tuple[FtpServer, Path]) -> None:
    _, path = mirrored
    job = rerun(path, force=True)
    assert job["tasks"]["ok"] == len(FILES) and job["summary"]["unchanged_dirs"] == 0


def test_a_failed_file_keeps_its_directory_unsettled(vsftpd: FtpServer, tmp_path: Path) -> None:
    """vsftpd serves as an unprivileged user: a mode-0 file is refused (550) each run."""
    fill(vsftpd.root, FILES)
    vsftpd.chown_root()
    path = mirror(vsftpd, tmp_path)
    (vsftpd.root / "src/new.py").write_text("new\n")
    (vsftpd.root / "src/new.py").chmod(0)
    for _ in range(2):
        job = rerun(path)
        assert job["tasks"]["failed"] == 1
        assert job["summary"]["unchanged_dirs"] <= DIRS - 1  # never src
    (vsftpd.root / "src/new.py").chmod(0o644)
    job = rerun(path)
    assert [task["label"] for task in job["task_list"]] == ["src/new.py"]
    assert rerun(path)["summary"]["unchanged_dirs"] == DIRS


def test_delete_still_removes_local_extras_in_an_unchanged_directory(ftp_server: FtpServer, tmp_path: Path) -> None:
    fill(ftp_server.root, FILES)
    ftp_server.chown_root()
    path = mirror(ftp_server, tmp_path, "    delete: true")
    run_inprocess(path)
    (tmp_path / "out/src/stray.txt").write_text("not on the server\n")
    job = rerun(path)
    assert job["summary"]["unchanged_dirs"] == DIRS  # src's listing and files are as recorded
    assert not (tmp_path / "out/src/stray.txt").exists()
    assert tree(tmp_path / "out") == {n: (v.encode() if isinstance(v, str) else v) for n, v in FILES.items()}


def test_rows_of_an_older_xfer_are_dropped_and_settle_again(mirrored: tuple[FtpServer, Path], tmp_path: Path) -> None:
    """A state file whose `ftp_dirs` rows predate the stamps (schema 1, no size and
    mtime per file): they are dropped, the next run takes the full path and settles."""
    _, path = mirrored
    state = tmp_path / ".xfer/state.db"
    with sqlite3.connect(state) as db:
        db.execute("DROP TABLE ftp_dirs")
        db.execute(
            "CREATE TABLE ftp_dirs (job TEXT NOT NULL, direction TEXT NOT NULL, path TEXT NOT NULL, digest BLOB NOT NULL,"
            " files TEXT NOT NULL, dirs TEXT NOT NULL, listed_files INTEGER NOT NULL, PRIMARY KEY (job, direction, path))"
        )
        db.execute("INSERT INTO ftp_dirs VALUES ('m', 'download', 'src', x'00', 'main.py', '', 1)")
        db.execute("UPDATE schema_version SET version = 1 WHERE namespace = 'ftp_dirs'")
    job = rerun(path)
    assert job["summary"]["unchanged_dirs"] == 0 and job["tasks"]["planned"] == 0
    assert rerun(path)["summary"]["unchanged_dirs"] == DIRS


def test_a_state_file_from_a_newer_xfer_is_a_job_error(mirrored: tuple[FtpServer, Path], tmp_path: Path) -> None:
    """Settled rows of a schema this xfer does not know: the job fails with one line
    saying so (the run went on to report it; its summary once raised AttributeError)."""
    _, path = mirrored
    with sqlite3.connect(tmp_path / ".xfer/state.db") as db:
        db.execute("UPDATE schema_version SET version = 99 WHERE namespace = 'ftp_dirs'")
    job = rerun(path)
    assert job["status"] == "failed"
    assert any("newer than this xfer" in error for error in job["errors"])
