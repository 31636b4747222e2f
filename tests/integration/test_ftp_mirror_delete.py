"""ftp.mirror `delete` (run off the event loop): what goes, what stays, what the state forgets."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from tests.integration.ftp_helpers import fill, job_report, run_inprocess, tree, write_jobs
from tests.servers.ftp import FtpServer, pyftpd  # noqa: F401 - fixture


def _rows(state: Path) -> set[str]:
    with sqlite3.connect(state) as db:
        return {path for (path,) in db.execute("SELECT path FROM ftp_files")}


def test_delete_keeps_state_and_seen_files_removes_stale_parts_and_forgets_rows(pyftpd: FtpServer, tmp_path: Path) -> None:
    fill(pyftpd.root, {"a/keep.txt": "k", "a/gone.txt": "g", "b/c/gone2.txt": "g2", "top.txt": "t"})
    local = tmp_path / "out"
    state = local / "state.db"  # inside the mirrored tree: never deleted
    path = write_jobs(
        tmp_path,
        f"""
defaults:
  state: {state}
jobs:
  - name: m
    kind: ftp.mirror
    remote: "{pyftpd.url('/', with_password=True)}"
    local: {local}
    delete: true
""",
    )
    assert job_report(run_inprocess(path), "m")["status"] == "ok"
    assert {"a/gone.txt", "b/c/gone2.txt"} <= _rows(state)
    (pyftpd.root / "a/gone.txt").unlink()
    (pyftpd.root / "b/c/gone2.txt").unlink()
    (pyftpd.root / "b/c").rmdir()
    (pyftpd.root / "b").rmdir()
    (local / "a/stale.bin.part").write_bytes(b"half")

    job = job_report(run_inprocess(path), "m")
    assert job["status"] == "ok", job
    deleted = {(note["path"], note["type"]) for note in job["notes"] if note.get("event") == "deleted"}
    assert deleted == {("a/gone.txt", "file"), ("a/stale.bin.part", "file"), ("b/c/gone2.txt", "file"), ("b/c", "dir"), ("b", "dir")}
    assert job["summary"]["deleted"] == 3
    assert set(tree(local)) - {"state.db", "state.db-wal", "state.db-shm"} == {"a/keep.txt", "top.txt"}
    assert state.exists()
    rows = _rows(state)
    assert "a/gone.txt" not in rows and "b/c/gone2.txt" not in rows and "a/keep.txt" in rows
