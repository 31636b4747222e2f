"""`xfer report REPORT.json [--html FILE]` on the report of a real run: two pyftpdlib
servers, one of them listing hostile names (`<script>...`), a job that fails to plan."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.integration.ftp_helpers import REPO, fill, write_jobs
from tests.servers.ftp import hostile_filesystem, running_pyftpdlib

#: Listed by the server: one refused (it has a slash), one that fails when fetched.
REFUSED, FAILING = "<script>alert(1)</script>.txt", "<script>alert(2).txt"
HostileFS = hostile_filesystem([REFUSED, FAILING])


def xfer(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "xfer", *args], capture_output=True, text=True, cwd=REPO, timeout=240)


def test_report_prints_what_run_printed_and_writes_an_escaped_page(tmp_path: Path) -> None:
    with running_pyftpdlib(tmp_path / "s1", filesystem=HostileFS) as hostile, running_pyftpdlib(tmp_path / "s2") as plain:
        fill(hostile.root, {"bait.txt": "bait", "good & <b>.txt": "good"})
        fill(plain.root, {"pub/x.bin": b"x" * 5000})
        jobs = write_jobs(tmp_path, f"""
jobs:
  - {{name: hostile, kind: ftp.mirror, remote: "{hostile.url('/', with_password=True)}", local: out/h, retries: 0}}
  - {{name: plain, kind: ftp.mirror, remote: "{plain.url('/pub/', with_password=True)}", local: out/p}}
  - {{name: missing, kind: ftp.mirror, remote: "{plain.url('/nope/', with_password=True)}", local: out/m, retries: 0}}
""")
        ran = xfer("run", str(jobs), "--report", str(tmp_path / "report.json"))
    assert ran.returncode == 1, ran.stderr
    assert ran.stdout.startswith("xfer run summary\n")

    shown = xfer("report", str(tmp_path / "report.json"), "--html", str(tmp_path / "run.html"))
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout == ran.stdout

    page = (tmp_path / "run.html").read_text()
    rows = re.findall(r"<tr>(.*?)</tr>", page)
    job_rows = [row for row in rows if 'href="#job-' in row]
    assert [re.search(r">([^<]+)</a>", row).group(1) for row in job_rows] == ["hostile", "plain", "missing"]  # type: ignore[union-attr]
    assert [re.findall(r'class="(ok|failed)"', row)[0] for row in job_rows] == ["failed", "ok", "failed"]
    for server in (hostile, plain):  # a row per host
        assert any(f"<td class=\"mono\">127.0.0.1:{server.port}</td>" in row for row in rows)
    # failures with their reasons, server texts escaped
    assert "CWD /nope: 550 No such file or directory." in page
    assert f"RETR /&lt;script&gt;alert(2).txt: 550 No such file or directory." in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;.txt" in page and "name contains slash" in page
    assert "good &amp; &lt;b&gt;.txt" in page
    assert "<script" not in page.lower() and "<b>" not in page
    # self-contained, and no password
    assert not re.search(r"<(link|img|iframe|object)\b|\bsrc=|url\(|https?://", page, re.I)
    assert hostile.password not in page and "p%40ss" not in page


def test_report_of_a_file_that_is_not_a_report(tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text("jobs: []\n")
    result = xfer("report", str(tmp_path / "jobs.yaml"))
    assert result.returncode == 2
    assert result.stderr.startswith(f"xfer: {tmp_path / 'jobs.yaml'}: not a JSON report:")
    missing = xfer("report", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.strip() == f"xfer: {tmp_path / 'nope.json'}: cannot read: No such file or directory"


def test_page_that_cannot_be_written(tmp_path: Path) -> None:
    (tmp_path / "jobs.yaml").write_text("jobs: []\n")
    assert xfer("run", str(tmp_path / "jobs.yaml"), "--quiet", "--report", str(tmp_path / "r.json")).returncode == 0
    (tmp_path / "file").write_text("")
    result = xfer("report", str(tmp_path / "r.json"), "--html", str(tmp_path / "file/run.html"))
    assert result.returncode == 1
    assert result.stderr.startswith(f"xfer: {tmp_path / 'file/run.html'}: cannot write: ")
    assert "Traceback" not in result.stderr and len(result.stderr.splitlines()) == 1
