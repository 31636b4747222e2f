"""Item 6: hostile listings. Every hostile name is reported, none lands outside the
destination. Complements tests/integration/test_ftp_safety.py (which covers the
symlink planted in the destination and the password scrubbing) with names carrying a
newline, and with the check that *each* hostile entry shows in the report.

The server is pyftpdlib (real) with a filesystem layer that lists extra names, as a
hostile or broken server would."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


from tests.integration.ftp_helpers import fill, job_report, run_inprocess, write_jobs
from tests.servers.ftp import hostile_filesystem, running_pyftpdlib

HOSTILE = [
    "../escape.txt", "/etc/passwd", "a/../../b.txt", "..", "back\\..\\slash.txt",
    "nul\0name.txt", "cr\rname.txt", "new\nline.txt", "tab\tname.txt", "../../../../tmp/xfer-escape",
]


HostileFS = hostile_filesystem(HOSTILE)


def _reported(name: str, notes: list[dict[str, Any]], errors: list[str]) -> bool:
    """A name is reported as refused, or its broken listing line is, or its task failed."""
    for note in notes:
        if note.get("event") == "unsafe_name" and note.get("name") == name:
            return True
        if note.get("event") == "unparsed_listing_line" and name.split("\n")[-1] in note.get("line", ""):
            return True
    return any(repr(name) in error or name.split("\n")[0] in error for error in errors)


def _snapshot(*roots: Path) -> set[str]:
    return {str(p) for root in roots for p in root.rglob("*")}


def test_each_hostile_name_is_refused_and_reported(tmp_path: Path) -> None:
    with running_pyftpdlib(tmp_path / "server", filesystem=HostileFS) as server:
        fill(server.root, {"bait.txt": "bait", "good.txt": "good"})
        path = write_jobs(
            tmp_path,
            f"""
jobs:
  - {{name: m, kind: ftp.mirror, remote: "{server.url('/', with_password=True)}", local: box/out, retries: 0}}
""",
        )
        (tmp_path / "box").mkdir()
        outside_before = _snapshot(tmp_path / "box", tmp_path / "server") | set(os.listdir(tmp_path))
        report = run_inprocess(path)
        outside_after = _snapshot(tmp_path / "box", tmp_path / "server") | set(os.listdir(tmp_path))
    job = job_report(report, "m")
    out = tmp_path / "box/out"
    written = {str(p) for p in out.rglob("*")}
    assert outside_after - outside_before - written <= {".xfer", str(out)}
    assert not Path("/tmp/xfer-escape").exists()
    assert (out / "good.txt").read_text() == "good" and (out / "bait.txt").read_text() == "bait"
    for name in HOSTILE:
        assert _reported(name, job["notes"], job["errors"]), (name, job["notes"], job["errors"])
    # A newline splits the listing line: the tail is an unparsed line, which marks the
    # walk incomplete (so `delete` would wait); the head is a name the server then
    # does not have (550, reported).
    assert job["summary"]["unsafe"] == len(HOSTILE) - 1
    assert job["summary"]["walk_complete"] is False
