"""ftp.mirror against real servers: pyftpdlib (MLSD) and vsftpd (LIST only)."""

from __future__ import annotations

import os
import shutil
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.integration.ftp_helpers import fill, job_report, run_cli, run_inprocess, tree, write_jobs
from tests.servers.ftp import FtpServer, ftp_server, pyftpd  # noqa: F401 - fixtures

FILES = {
    "top.txt": "top\n",
    "src/main.py": "print('hi')\n",
    "src/util.py": "x = 1\n" * 100,
    "src/notes.log": "noise\n",
    "doc/doc1.pdf": b"%PDF" + bytes(range(256)) * 40,
    "doc/readme.txt": "read me\n",
    "tmp/scratch.py": "scratch\n",
    "deep/a/b/c/data.tar.gz": os.urandom(300_000),
}


def mirror_job(server: FtpServer, tmp: Path, extra: str = "", name: str = "m", local: str = "out") -> Path:
    return write_jobs(
        tmp,
        f"""
jobs:
  - name: {name}
    kind: ftp.mirror
    remote: "{server.url('/', with_password=True)}"
    local: {local}
{extra}
""",
    )


@pytest.fixture
def filled(ftp_server: FtpServer) -> FtpServer:
    fill(ftp_server.root, FILES)
    ftp_server.chown_root()
    return ftp_server


def expected(*names: str) -> dict[str, bytes]:
    return {name: (FILES[name].encode() if isinstance(FILES[name], str) else FILES[name]) for name in names}


def test_recursive_mirror_then_incremental_rerun_transfers_nothing(filled: FtpServer, tmp_path: Path) -> None:
    path = mirror_job(filled, tmp_path)
    code, report, output = run_cli(path)
    assert code == 0, output
    assert tree(tmp_path / "out") == expected(*FILES)
    job = job_report(report, "m")
    assert job["tasks"]["ok"] == len(FILES) and job["bytes"] == sum(len(v) for v in expected(*FILES).values())

    again = job_report(run_inprocess(path), "m")
    assert again["status"] == "ok"
    assert again["tasks"]["planned"] == 0
    assert again["summary"]["up_to_date"] == len(FILES)


def test_changed_file_is_fetched_again_and_only_it(filled: FtpServer, tmp_path: Path) -> None:
    path = mirror_job(filled, tmp_path)
    run_inprocess(path)
    (filled.root / "src/main.py").write_text("print('changed, and longer')\n")
    job = job_report(run_inprocess(path), "m")
    assert [task["label"] for task in job["task_list"]] == ["src/main.py"]
    assert (tmp_path / "out/src/main.py").read_text() == "print('changed, and longer')\n"


def test_force_fetches_everything_again(filled: FtpServer, tmp_path: Path) -> None:
    path = mirror_job(filled, tmp_path)
    run_inprocess(path)
    job = job_report(run_inprocess(path, force=True), "m")
    assert job["tasks"]["ok"] == len(FILES)


def test_flat_mirror_and_include_exclude(filled: FtpServer, tmp_path: Path) -> None:
    flat = mirror_job(filled, tmp_path, "    recursive: false", name="flat", local="flat")
    assert job_report(run_inprocess(flat), "flat")["status"] == "ok"
    assert tree(tmp_path / "flat") == expected("top.txt")

    filtered = mirror_job(
        filled,
        tmp_path,
        '    include: ["*.py", "doc*.pdf", "**/*.tar.gz"]\n    exclude: ["tmp/", "util.py"]',
        name="filtered",
        local="filtered",
    )
    assert job_report(run_inprocess(filtered), "filtered")["status"] == "ok"
    assert tree(tmp_path / "filtered") == expected("src/main.py", "doc/doc1.pdf", "deep/a/b/c/data.tar.gz")


def test_max_depth_limits_the_walk(filled: FtpServer, tmp_path: Path) -> None:
    path = mirror_job(filled, tmp_path, "    max_depth: 1")
    run_inprocess(path)
    assert set(tree(tmp_path / "out")) == {name for name in FILES if name.count("/") <= 1}


def test_resume_from_part_uses_rest(filled: FtpServer, tmp_path: Path) -> None:
    content = FILES["deep/a/b/c/data.tar.gz"]
    half = len(content) // 2
    part = tmp_path / "out/deep/a/b/c/data.tar.gz.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(content[:half])
    path = mirror_job(filled, tmp_path, '    include: ["data.tar.gz"]')
    job = job_report(run_inprocess(path), "m")
    assert job["status"] == "ok"
    (task,) = job["task_list"]
    assert task["detail"] == {"bytes": len(content) - half, "resumed_from": half}
    assert (tmp_path / "out/deep/a/b/c/data.tar.gz").read_bytes() == content
    assert not part.exists()


def test_part_of_another_version_is_not_resumed(filled: FtpServer, tmp_path: Path) -> None:
    """A .part started for an older remote version (per the state) starts over."""
    path = mirror_job(filled, tmp_path, '    include: ["top.txt"]')
    run_inprocess(path)
    (filled.root / "top.txt").write_text("a new, longer version of top\n")
    (tmp_path / "out/top.txt.part").write_text("a new")  # looks like a prefix, but...
    from xfer.state import StateStore

    state = StateStore(tmp_path / ".xfer/state.db")
    state.execute("UPDATE ftp_files SET pending = 'stale|x' WHERE path = 'top.txt'")
    state.close()
    job = job_report(run_inprocess(path), "m")
    assert job["task_list"][0]["detail"] == {"bytes": len("a new, longer version of top\n")}
    assert (tmp_path / "out/top.txt").read_text() == "a new, longer version of top\n"


def test_delete_removes_what_the_server_lost_and_dry_run_only_lists(filled: FtpServer, tmp_path: Path) -> None:
    path = mirror_job(filled, tmp_path, '    delete: true\n    exclude: ["*.log"]')
    run_inprocess(path)
    (tmp_path / "out/src/notes.log").write_text("local, excluded: kept")
    (filled.root / "src/util.py").unlink()
    shutil.rmtree(filled.root / "deep")

    dry = job_report(run_inprocess(path, dry_run=True), "m")
    would = {note["path"] for note in dry["notes"] if note.get("event") == "would_delete"}
    assert {"src/util.py", "deep/a/b/c/data.tar.gz"} <= would
    assert (tmp_path / "out/src/util.py").exists()

    job = job_report(run_inprocess(path), "m")
    deleted = {note["path"] for note in job["notes"] if note.get("event") == "deleted"}
    assert {"src/util.py", "deep/a/b/c/data.tar.gz", "deep"} <= deleted
    assert not (tmp_path / "out/deep").exists()
    assert (tmp_path / "out/src/notes.log").exists()
    assert set(tree(tmp_path / "out")) == {"top.txt", "src/main.py", "src/notes.log", "doc/doc1.pdf", "doc/readme.txt", "tmp/scratch.py"}


@pytest.mark.parametrize("kind", ["zip", "tgz", "tbz2"])
def test_archive_holds_the_mirrored_tree(pyftpd: FtpServer, tmp_path: Path, kind: str) -> None:
    fill(pyftpd.root, FILES)
    path = mirror_job(pyftpd, tmp_path, f"    archive: {kind}\n    archive_path: site.{kind}")
    job = job_report(run_inprocess(path), "m")
    assert job["status"] == "ok", job
    archive = tmp_path / f"site.{kind}"
    if kind == "zip":
        with zipfile.ZipFile(archive) as opened:
            contents = {name: opened.read(name) for name in opened.namelist()}
    else:
        with tarfile.open(archive) as opened:
            contents = {m.name: opened.extractfile(m).read() for m in opened.getmembers() if m.isfile()}  # type: ignore[union-attr]
    assert contents == expected(*FILES)
    assert not (tmp_path / f"site.{kind}.part").exists()


def test_upload_then_incremental(ftp_server: FtpServer, tmp_path: Path) -> None:
    local = tmp_path / "site"
    fill(local, {"index.html": "<p>hi</p>", "img/logo.png": os.urandom(70_000), "img/old.tmp": "x"})
    ftp_server.chown_root()
    path = write_jobs(
        tmp_path,
        f"""
jobs:
  - name: up
    kind: ftp.mirror
    direction: upload
    remote: "{ftp_server.url('/www', with_password=True)}"
    local: site
    exclude: ["*.tmp"]
""",
    )
    job = job_report(run_inprocess(path), "up")
    assert job["status"] == "ok", job
    assert tree(ftp_server.root / "www") == {k: v for k, v in tree(local).items() if k != "img/old.tmp"}
    assert job_report(run_inprocess(path), "up")["tasks"]["planned"] == 0
    (local / "index.html").write_text("<p>changed</p>")
    again = job_report(run_inprocess(path), "up")
    assert [task["label"] for task in again["task_list"]] == ["index.html"]
    assert (ftp_server.root / "www/index.html").read_text() == "<p>changed</p>"
