"""Listings of the servers the suite runs, through the parser and through a mirror.

The tree holds what tripped parsers elsewhere (issue 13): a name that is a date, a
name that is a year with a size like a year, leading and trailing spaces, a file past
4 GiB (sparse), an old file (year shown) beside recent ones. Expected values come from
the files on disk, so the test stays true when the servers' versions change; the
verbatim lines of one run are kept in tests/unit/test_ftp_listing_corpus.py."""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from ftplib import FTP
from pathlib import Path
from typing import Any

import pytest

from xfer.protocols.ftp_listing import RemoteEntry, parse_list_line, parse_mlsd_line
from tests.integration.ftp_helpers import fill, job_report, run_inprocess, write_jobs
from tests.servers.ftp import FtpServer, ftp_server, running_pyftpdlib  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(120)

OLD = 1_000_000_000  # 2001-09-09 01:46:40 UTC: LIST shows the year, not the time
SIZES = {"Mar 18 18:58 like a date": 12, "2019": 2019, "  lead and trail  ": 1, "old 4096.bin": 4096}


def _build(root: Path, now: int) -> dict[str, int]:
    """Files and their mtimes (s); a sparse big.iso; a directory."""
    mtimes = {"Mar 18 18:58 like a date": now - 86400, "2019": now - 3 * 86400,
              "  lead and trail  ": now - 3600, "old 4096.bin": OLD, "big.iso": 1262304000}
    for name, size in SIZES.items():
        (root / name).write_bytes(b"x" * size)
    with open(root / "big.iso", "wb") as handle:
        handle.truncate(5_000_000_000)
    for name, mtime in mtimes.items():
        os.utime(root / name, (mtime, mtime))
    (root / "sub dir").mkdir()
    return mtimes


def _expected_list(name: str, mtime: int, now: int) -> RemoteEntry:
    """What `ls -l` says of the file: minutes for the last months, else the day."""
    moment = datetime.fromtimestamp(mtime, timezone.utc).replace(tzinfo=None, second=0)
    if now - mtime > 150 * 86400:
        return RemoteEntry(name, "file", SIZES.get(name, 5_000_000_000), moment.replace(hour=0, minute=0), "day")
    return RemoteEntry(name, "file", SIZES.get(name, 5_000_000_000), moment, "minute")


def _lines(server: FtpServer, command: str) -> list[str]:
    client = FTP(timeout=10)
    client.connect(server.host, server.port)
    try:
        client.login(server.user, server.password)
        lines: list[str] = []
        client.retrlines(command, lines.append)
        return lines
    finally:
        client.quit()


def test_live_listings_parse_to_the_files_on_disk(ftp_server: FtpServer) -> None:
    now = int(time.time()) // 60 * 60
    mtimes = _build(ftp_server.root, now)
    ftp_server.chown_root()
    entries = [parse_list_line(line, now=datetime.fromtimestamp(now, timezone.utc)) for line in _lines(ftp_server, "LIST -a")]
    by_name = {entry.name: entry for entry in entries if entry is not None}
    assert set(by_name) == {*mtimes, "sub dir"}
    for name, mtime in mtimes.items():
        assert by_name[name] == _expected_list(name, mtime, now), name
    assert by_name["sub dir"].type == "dir"
    if ftp_server.kind == "pyftpdlib":  # vsftpd has no MLSD
        mlsd = {e.name: e for e in map(parse_mlsd_line, _lines(ftp_server, "MLSD")) if e is not None}
        for name, mtime in mtimes.items():
            assert mlsd[name] == RemoteEntry(name, "file", SIZES.get(name, 5_000_000_000),
                                             datetime.fromtimestamp(mtime, timezone.utc), "second"), name


def _absurd_size_fs() -> type:
    """pyftpdlib listing every *.VOB with size 2**64-1, as a real DVD server did."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyftpdlib.filesystems import AbstractedFS

    class AbsurdSizeFS(AbstractedFS):  # type: ignore[misc]
        def stat(self, path: str) -> Any:
            st = super().stat(path)
            if not path.endswith(".VOB"):
                return st
            fields = list(st)
            fields[6] = 2**64 - 1  # st_size
            return os.stat_result(fields)

        lstat = stat

    return AbsurdSizeFS


def _without_mlsd() -> dict[str, Any]:
    """Handler attributes that make pyftpdlib offer LIST only, as vsftpd does."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyftpdlib.handlers import FTPHandler
    return {"proto_cmds": {k: v for k, v in FTPHandler.proto_cmds.items() if k not in ("MLSD", "MLST")}}


@pytest.mark.parametrize("listing", ["MLSD", "LIST"])
def test_file_of_absurd_size_is_fetched_and_delete_still_runs(tmp_path: Path, listing: str) -> None:
    """Issue 13: the line is kept with an unknown size, the file is fetched without the
    size check, the walk stays complete (so `delete` still removes what the server
    lost) and the file itself is not deleted."""
    content = os.urandom(100_000)
    options: dict[str, Any] = {"filesystem": _absurd_size_fs()}
    if listing == "LIST":
        options["handler_attrs"] = _without_mlsd()
    with running_pyftpdlib(tmp_path / "server", **options) as server:
        fill(server.root, {"VIDEO_TS/VIDEO_TS.VOB": content, "small.txt": "small\n"})
        assert any("18446744073709551615" in line for line in _lines(server, f"{listing} VIDEO_TS"))
        fill(tmp_path / "out", {"gone.txt": "the server lost me\n"})
        path = write_jobs(tmp_path, f"""
jobs:
  - name: m
    kind: ftp.mirror
    remote: "{server.url('/', with_password=True)}"
    local: out
    delete: true
""")
        job = job_report(run_inprocess(path), "m")
        again = job_report(run_inprocess(path), "m")
    assert again["summary"]["downloaded"] == 0  # unchanged: not fetched again for its unknown size
    assert (tmp_path / "out/VIDEO_TS/VIDEO_TS.VOB").read_bytes() == content
    assert (tmp_path / "out/small.txt").read_text() == "small\n"
    assert not (tmp_path / "out/gone.txt").exists()
    assert job["summary"]["walk_complete"] is True
    assert not [note for note in job["notes"] if note.get("event") == "unparsed_listing_line"]
