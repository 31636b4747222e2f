"""A hostile server cannot place files outside the destination; passwords never
show in reports or output."""

from __future__ import annotations

import os
from pathlib import Path


from tests.integration.ftp_helpers import fill, job_report, run_cli, run_inprocess, tree, write_jobs
from tests.servers.ftp import FtpServer, ftp_server, hostile_filesystem, running_pyftpdlib  # noqa: F401 - fixture

HOSTILE = ["../escape.txt", "/etc/passwd", "a/../../b.txt", "evil\rname.txt", "nul\0name.txt", "back\\..\\slash.txt", ".."]


HostileFS = hostile_filesystem(HOSTILE)


def test_hostile_names_are_refused_and_reported(tmp_path: Path) -> None:
    with running_pyftpdlib(tmp_path / "server", filesystem=HostileFS) as server:
        fill(server.root, {"bait.txt": "bait", "good.txt": "good"})
        path = write_jobs(
            tmp_path,
            f"""
jobs:
  - name: m
    kind: ftp.mirror
    remote: "{server.url('/', with_password=True)}"
    local: box/out
""",
        )
        (tmp_path / "box").mkdir()
        before = set(os.listdir(tmp_path)) | {".xfer"}  # the state file is expected
        report = run_inprocess(path)
    job = job_report(report, "m")
    assert tree(tmp_path / "box/out") == {"bait.txt": b"bait", "good.txt": b"good"}
    refused = {note["name"] for note in job["notes"] if note.get("event") == "unsafe_name"}
    assert {"../escape.txt", "/etc/passwd", "a/../../b.txt", "back\\..\\slash.txt"} <= refused
    assert set(os.listdir(tmp_path)) == before  # nothing new beside the destination
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "box/escape.txt").exists()


def test_local_symlink_out_of_the_destination_is_not_followed(ftp_server: FtpServer, tmp_path: Path) -> None:
    fill(ftp_server.root, {"sub/x.txt": "x", "ok.txt": "ok"})
    ftp_server.chown_root()
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "out").mkdir()
    (tmp_path / "out/sub").symlink_to(outside)
    path = write_jobs(
        tmp_path,
        f"""
jobs:
  - name: m
    kind: ftp.mirror
    remote: "{ftp_server.url('/', with_password=True)}"
    local: out
""",
    )
    job = job_report(run_inprocess(path), "m")
    assert list(outside.iterdir()) == []
    assert (tmp_path / "out/ok.txt").read_text() == "ok"
    assert any(note.get("event") == "unsafe_local_path" for note in job["notes"])


def test_password_never_in_report_or_output(ftp_server: FtpServer, tmp_path: Path) -> None:
    fill(ftp_server.root, {"a.txt": "a"})
    ftp_server.chown_root()
    wrong = ftp_server.url("/", with_password=True).replace(
        ftp_server.url("/", with_password=True).split("//")[1].split("@")[0], f"{ftp_server.user}:Wr0ngSecretPw"
    )
    path = write_jobs(
        tmp_path,
        f"""
hosts:
  "{ftp_server.host}:{ftp_server.port}":
    password: "{ftp_server.password}"
jobs:
  - name: good
    kind: ftp.mirror
    remote: "ftp://{ftp_server.user}@{ftp_server.host}:{ftp_server.port}/nope"
    local: out
  - name: bad-login
    kind: ftp.pull
    remote: "{wrong}"
    files: ["a.txt"]
    local: out2
""",
    )
    code, report, output = run_cli(path, "--json")
    assert code == 1
    text = output + str(report)
    assert "550" in job_report(report, "good")["errors"][0]
    bad = job_report(report, "bad-login")["errors"][0]
    assert "530" in bad or "login" in bad.lower()
    for secret in (ftp_server.password, "Wr0ngSecretPw"):
        assert secret not in text
        assert secret.replace("@", "%40").replace(":", "%3A").replace("/", "%2F") not in text
