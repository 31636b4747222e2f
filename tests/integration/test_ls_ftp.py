"""`xfer ls ftp://...` against pyftpdlib and vsftpd (MLSD and LIST): the directory,
the tree to a depth, JSON, include/exclude as a mirror applies them, credentials
from a --jobs host block and from ~/.netrc, and one-line errors without the password."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from xfer.cli import main
from tests.integration.ftp_helpers import REPO, fill, job_report, run_inprocess, tree, write_jobs
from tests.servers.ftp import FtpServer, ftp_server, pyftpd, running_pyftpdlib  # noqa: F401 - fixtures

pytestmark = pytest.mark.timeout(120)

FILES = {
    "top.txt": "top\n",
    "pkg-1.0.tar.gz": "x" * 300,
    "src/main.c": "int main;\n",
    "src/lib/util.c": "u" * 42,
    "src/lib/deeper/far.tar.gz": "far",
    "old/ancient.tar.gz": "a" * 7,
}


def ls(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["ls", *args])
    out, err = capsys.readouterr()
    return code, out, err


def ls_json(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, dict[str, Any]]:
    code, out, err = ls(capsys, "--json", *args)
    assert code == 0, err
    return {row["path"]: row for row in json.loads(out)}


def test_directory_tree_and_depth(ftp_server: FtpServer, capsys: pytest.CaptureFixture[str]) -> None:
    fill(ftp_server.root, FILES)
    url = ftp_server.url("/", with_password=True)

    code, out, err = ls(capsys, url)
    assert code == 0 and not err
    lines = out.splitlines()
    assert lines[0].split() == ["T", "SIZE", "TIME", "(UTC)", "PATH"]
    assert [line.split()[-1] for line in lines[1:]] == ["old/", "pkg-1.0.tar.gz", "src/", "top.txt"]
    assert lines[2].split()[:2] == ["-", "300"] and lines[3].split()[:2] == ["d", "-"]
    assert ftp_server.password not in out

    top = ls_json(capsys, url)
    assert {path: (row["type"], row["size"]) for path, row in top.items()} == {
        "old/": ("dir", None), "pkg-1.0.tar.gz": ("file", 300), "src/": ("dir", None), "top.txt": ("file", 4),
    }
    assert all(row["mtime"] for row in top.values())
    assert {row["precision"] for row in top.values()} == ({"minute"} if ftp_server.kind == "vsftpd" else {"second"})

    one = ls_json(capsys, "--depth", "1", url)
    assert set(one) == set(top) | {"old/ancient.tar.gz", "src/main.c", "src/lib/"}
    everything = ls_json(capsys, "-R", url)
    files = {path: row["size"] for path, row in everything.items() if row["type"] == "file"}
    assert files == {path: len(content) for path, content in FILES.items()}
    assert {"src/lib/", "src/lib/deeper/"} <= set(everything)
    assert set(ls_json(capsys, "--depth", "0", ftp_server.url("/src", with_password=True))) == {"main.c", "lib/"}


def test_filter_shows_what_the_mirror_takes(ftp_server: FtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fill(ftp_server.root, FILES)
    include, exclude = "*.tar.gz", "old/"
    shown = ls_json(capsys, "-R", "--include", include, "--exclude", exclude, ftp_server.url("/", with_password=True))
    assert {path for path, row in shown.items() if row["type"] == "file"} == {"pkg-1.0.tar.gz", "src/lib/deeper/far.tar.gz"}
    assert "old/" not in shown  # excluded directories are not entered

    jobs = write_jobs(tmp_path, (
        f"defaults:\n  state: {tmp_path / 'state.db'}\njobs:\n  - name: m\n    kind: ftp.mirror\n"
        f"    remote: {ftp_server.url('/', with_password=True)}\n    local: {tmp_path / 'mirror'}\n"
        f"    include: ['{include}']\n    exclude: ['{exclude}']\n"
    ))
    assert job_report(run_inprocess(jobs), "m")["status"] == "ok"
    mirrored = tree(tmp_path / "mirror")
    assert set(mirrored) == {path for path, row in shown.items() if row["type"] == "file"}
    assert {path: len(data) for path, data in mirrored.items()} == {
        path: row["size"] for path, row in shown.items() if row["type"] == "file"
    }


def test_credentials_from_jobs_file_and_netrc(
    pyftpd: FtpServer, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    fill(pyftpd.root, {"a.txt": "a"})
    bare = pyftpd.url("/")  # the user, no password
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NETRC", raising=False)
    code, _, err = ls(capsys, bare)
    assert code == 1 and "530" in err and len(err.splitlines()) == 1

    jobs = tmp_path / "hosts.yaml"
    jobs.write_text(
        f"hosts:\n  {pyftpd.host}:{pyftpd.port}:\n    user: {pyftpd.user}\n    password: '{pyftpd.password}'\njobs: []\n"
    )
    assert set(ls_json(capsys, "--jobs", str(jobs), pyftpd.url("/", anonymous=True))) == {"a.txt"}

    netrc = tmp_path / ".netrc"
    netrc.write_text(f"machine {pyftpd.host} login {pyftpd.user} password {pyftpd.password}\n")
    netrc.chmod(0o600)
    assert set(ls_json(capsys, bare)) == {"a.txt"}
    netrc.chmod(0o644)  # others could read it: refused, and said how to fix it
    code, out, err = ls(capsys, bare)
    assert code == 1 and "chmod 600" in err and len(err.splitlines()) == 1
    assert pyftpd.password not in out + err


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "xfer", "ls", *args], capture_output=True, text=True, cwd=REPO, timeout=60,
        env={**os.environ, "HOME": "/nonexistent"},
    )


def test_errors_are_one_line_without_the_password(pyftpd: FtpServer) -> None:
    wrong = "wrong-" + pyftpd.password
    refused = _cli(f"ftp://{pyftpd.user}:{quote(wrong, safe='')}@{pyftpd.host}:{pyftpd.port}/")
    assert refused.returncode == 1 and refused.stdout == ""
    assert len(refused.stderr.splitlines()) == 1 and "530" in refused.stderr
    missing = _cli(pyftpd.url("/no/such/dir", with_password=True))
    assert missing.returncode == 1 and len(missing.stderr.splitlines()) == 1 and "550" in missing.stderr
    unknown = _cli(f"ftp://someone:{quote(pyftpd.password, safe='')}@no-such-host.invalid/")
    assert unknown.returncode == 1 and len(unknown.stderr.splitlines()) == 1 and "no-such-host.invalid" in unknown.stderr
    bad = _cli("http://example.org/")
    assert bad.returncode == 2 and "scheme" in bad.stderr
    for proc in (refused, missing, unknown):
        assert pyftpd.password not in proc.stdout + proc.stderr and wrong not in proc.stdout + proc.stderr


def test_ftps_verifies_certificates_unless_insecure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    with running_pyftpdlib(tmp_path, tls=True) as server:
        fill(server.root, {"secret.txt": "s"})
        url = server.url("/", scheme="ftps", with_password=True)
        code, out, err = ls(capsys, url)
        assert code == 1 and out == "" and len(err.splitlines()) == 1 and "certificate" in err.lower()
        assert set(ls_json(capsys, "--insecure", url)) == {"secret.txt"}
        jobs = tmp_path / "ca.yaml"
        jobs.write_text(f"hosts:\n  {server.host}:\n    ca_file: {server.ca_pem}\njobs: []\n")
        assert set(ls_json(capsys, "--jobs", str(jobs), url)) == {"secret.txt"}


def _unlistable(name: str) -> type:
    """A pyftpdlib filesystem that refuses to list directory `name` (EACCES: 550)."""
    from pyftpdlib.filesystems import AbstractedFS

    class Refusing(AbstractedFS):  # type: ignore[misc]
        def listdir(self, path: str) -> list[str]:
            if os.path.basename(path.rstrip("/")) == name:
                raise PermissionError(13, "Permission denied")
            return super().listdir(path)

    return Refusing


def test_unlistable_directory_shows_the_rest_and_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with running_pyftpdlib(tmp_path, filesystem=_unlistable("locked")) as server:
        fill(server.root, {"open/a.txt": "a", "locked/b.txt": "b", "top.txt": "t"})
        code, out, err = ls(capsys, "-R", "--json", server.url("/", with_password=True))
        assert code == 1
        assert {row["path"] for row in json.loads(out)} == {"locked/", "open/", "open/a.txt", "top.txt"}
        assert "locked" in err and "550" in err and server.password not in out + err
