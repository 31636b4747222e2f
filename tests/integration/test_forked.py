"""`xfer run --processes N` (engine/forked.py) against real servers: pyftpdlib counting
its own connections, so a host's limit is checked as the server saw it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration.ftp_helpers import REPO, fill, tree
from tests.integration.test_mail_load import Sink, sink  # noqa: F401 - the sink fixture
from tests.servers.ftp import running_pyftpdlib

SITES = 6


def start(jobs: Path, *args: str) -> subprocess.Popen[str]:
    report = jobs.with_suffix(".report.json")
    report.unlink(missing_ok=True)
    return subprocess.Popen([sys.executable, "-m", "xfer", "run", str(jobs), "--report", str(report), "--quiet", *args],
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def run_report(jobs: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    proc = start(jobs, *args)
    _, stderr = proc.communicate(timeout=180)
    report = jobs.with_suffix(".report.json")
    return proc.returncode, (json.loads(report.read_text()) if report.exists() else {}), stderr


def mirror_jobs(tmp: Path, urls: list[str], limit: int, extra: str = "") -> Path:
    lines = [f"  - {{name: site{n}, kind: ftp.mirror, remote: '{urls[n % len(urls)]}site{n}/', local: out/site{n}}}"
             for n in range(SITES)]
    path = tmp / "jobs.yaml"
    path.write_text(f"defaults: {{max_connections_per_host: {limit}{extra}}}\njobs:\n" + "\n".join(lines) + "\n")
    return path


def fill_sites(server: Any, files: int = 15) -> None:
    for n in range(SITES):
        fill(server.root / f"site{n}", {f"d{d}/f{i}.bin": os.urandom(3000 + i) for d in range(3) for i in range(files)})


@pytest.fixture
def one_host(tmp_path: Path) -> Iterator[Any]:
    with running_pyftpdlib(tmp_path / "a") as server:
        fill_sites(server)
        yield server


def test_jobs_of_one_host_split_over_processes_keep_the_host_limit(tmp_path: Path, one_host: Any) -> None:
    jobs = mirror_jobs(tmp_path, [f"ftp://127.0.0.1:{one_host.port}/"], limit=4)
    code, report, stderr = run_report(jobs, "--processes", "2")
    assert code == 0, stderr
    for n in range(SITES):
        assert tree(tmp_path / f"out/site{n}") == tree(one_host.root / f"site{n}")
    assert one_host.peak_connections <= 4  # 2 + 2, counted by the server
    assert [job["name"] for job in report["jobs"]] == [f"site{n}" for n in range(SITES)]  # file order
    assert {job["status"] for job in report["jobs"]} == {"ok"}
    assert sum(job["tasks"]["ok"] for job in report["jobs"]) == SITES * 45
    assert report["totals"]["bytes"] == sum(len(data) for n in range(SITES) for data in tree(one_host.root / f"site{n}").values())

    code, again, stderr = run_report(jobs, "-P", "2")  # state shared by the processes: incremental
    assert code == 0, stderr
    assert again["totals"]["bytes"] == 0 and again["totals"]["tasks_ok"] == 0


def test_hosts_are_never_shared_between_processes(tmp_path: Path) -> None:
    with running_pyftpdlib(tmp_path / "a") as first, running_pyftpdlib(tmp_path / "b") as second:
        for server in (first, second):
            fill_sites(server, files=10)
        urls = [f"ftp://127.0.0.1:{first.port}/", f"ftp://127.0.0.1:{second.port}/"]
        jobs = mirror_jobs(tmp_path, urls, limit=3)
        code, report, stderr = run_report(jobs, "-P", "2")
        assert code == 0, stderr
        assert first.peak_connections <= 3 and second.peak_connections <= 3
        assert report["totals"]["tasks_ok"] == SITES * 30


def test_sigterm_stops_every_process_and_a_rerun_completes(tmp_path: Path, one_host: Any) -> None:
    for n in range(SITES):
        fill(one_host.root / f"site{n}", {f"big{i}.bin": os.urandom(2_000_000) for i in range(4)})
    jobs = mirror_jobs(tmp_path, [f"ftp://127.0.0.1:{one_host.port}/"], limit=4, extra=", grace_period: 0.5")
    rate_limited = jobs.read_text().replace("local: out/site", "rate_limit: 2000000, local: out/site")
    jobs.write_text(rate_limited)
    proc = start(jobs, "-P", "2")
    time.sleep(2.0)
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=10)  # grace + 1 s, and some slack for start-up
    assert proc.returncode == 143, stderr
    report = json.loads(jobs.with_suffix(".report.json").read_text())
    assert report["stopped_by"] == "SIGTERM"
    assert "cancelled" in {job["status"] for job in report["jobs"]}
    assert not [path for path in (tmp_path / "out").rglob("*.bin") if path.stat().st_size != 2_000_000]
    code, _, stderr = run_report(jobs.with_name("jobs.yaml"))
    assert code == 0, stderr
    for n in range(SITES):
        assert tree(tmp_path / f"out/site{n}") == tree(one_host.root / f"site{n}")


def slow_sites_run(tmp_path: Path, server: Any, rate: int) -> tuple[Path, subprocess.Popen[str], list[int]]:
    """A `-P 2` run of big rate-limited files, its job file and its two children."""
    for n in range(SITES):
        fill(server.root / f"site{n}", {"big.bin": os.urandom(4_000_000)})
    jobs = mirror_jobs(tmp_path, [f"ftp://127.0.0.1:{server.port}/"], limit=4, extra=", grace_period: 0.5")
    jobs.write_text(jobs.read_text().replace("local: out/site", f"rate_limit: {rate}, local: out/site"))
    proc = start(jobs, "-P", "2")
    children: list[int] = []
    deadline = time.monotonic() + 20
    while len(children) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
        children = [int(pid) for pid in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()]
    return jobs, proc, children


def test_a_killed_process_fails_its_jobs_with_one_line(tmp_path: Path, one_host: Any) -> None:
    jobs, proc, children = slow_sites_run(tmp_path, one_host, 1_000_000)
    os.kill(children[0], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 1, stderr
    report = json.loads(jobs.with_suffix(".report.json").read_text())
    failed = [job for job in report["jobs"] if job["status"] == "failed"]
    assert failed and all(job["errors"] == ["its worker process ended with signal SIGKILL"] for job in failed)
    assert {job["status"] for job in report["jobs"] if job not in failed} == {"ok"}


def split_mirror(tmp_path: Path, server: Any, files: dict[str, bytes], extra: str = "") -> tuple[Path, dict[str, Any]]:
    """Mirror `files` (served under tree/) as one job split over two processes sharing
    the host's limit of 4; checks the copy and the limit, returns the job file and report."""
    fill(server.root / "tree", files)
    jobs = tmp_path / "jobs.yaml"
    url = f"ftp://127.0.0.1:{server.port}/tree/"
    jobs.write_text(f"defaults: {{max_connections_per_host: 4}}\n"
                    f"jobs:\n  - {{name: big, kind: ftp.mirror, remote: '{url}', local: out{extra}}}\n")
    code, report, stderr = run_report(jobs, "-P", "2")
    assert code == 0, stderr
    assert tree(tmp_path / "out") == tree(server.root / "tree")
    assert server.peak_connections <= 4
    return jobs, report


def test_a_lone_mirror_is_split_over_processes_by_top_level_directory(tmp_path: Path) -> None:
    with running_pyftpdlib(tmp_path / "a") as server:
        files = {f"d{d}/sub/f{i}.bin": os.urandom(2000 + i) for d in range(8) for i in range(10)}
        jobs, report = split_mirror(tmp_path, server, {**files, "top1.txt": b"top\n", "top2.txt": b"top too\n"},
                                    ", delete: true")
        (job,) = report["jobs"]
        assert job["status"] == "ok" and job["tasks"]["ok"] == 82 and job["tasks"]["planned"] == 82
        assert job["summary"]["files"] == 82 and job["summary"]["walk_complete"] is True
        assert job["summary"]["dirs"] == 1 + 8 * 2  # the top once, not once a share

        (server.root / "tree/d3/sub/f0.bin").unlink()  # gone from the server: deleted here too
        (tmp_path / "out/d5/stray.txt").write_text("only here\n")  # not the server's: deleted
        code, again, stderr = run_report(jobs, "-P", "2")
        assert code == 0, stderr
        assert again["totals"]["bytes"] == 0
        assert tree(tmp_path / "out") == tree(server.root / "tree")
        assert again["jobs"][0]["summary"]["deleted"] == 2


def test_processes_at_their_share_keep_their_connections_rather_than_log_in_again(tmp_path: Path) -> None:
    """Both shares of a split mirror want more than their half of the host's limit.
    Each used to close every connection its workers let go between directories, for a
    lease the other could not take (it was at its share too), and log in again: eight
    times the run's time against vsftpd."""
    with running_pyftpdlib(tmp_path / "a") as server:
        _, report = split_mirror(tmp_path, server, {f"d{d}/f{i}.bin": os.urandom(500 + i) for d in range(12) for i in range(15)})
        # 7-10 seen: a share whose directories run out hands its connections to the
        # other, which logs in for them. The thrash made 125.
        assert server.total_connections <= 16, report["hosts"]


def test_a_lone_load_test_splits_over_processes_and_merges_exactly(tmp_path: Path, sink: tuple[Sink, int]) -> None:
    handler, port = sink
    jobs = tmp_path / "load.yaml"
    jobs.write_text(
        f"hosts:\n  127.0.0.1:{port}: {{max_connections: 4}}\n"
        "jobs:\n  - name: load\n    kind: mail.load\n"
        f"    smtp: smtp://127.0.0.1:{port}\n    count: 400\n    concurrency: 4\n"
        "    envelope: {from: load@example.test, to: [sink@example.test]}\n"
        "    report_html: load.html\n"
    )
    code, report, stderr = run_report(jobs, "-P", "2")
    assert code == 0, stderr
    assert handler.messages == 400
    (job,) = report["jobs"]
    summary = job["summary"]
    assert summary["sent"] == summary["accepted"] == 400 and summary["concurrency"] == 4
    assert len(summary["share_latency_hdr"]) == 2
    assert job["tasks"]["ok"] == 400
    assert "400 sent, 400 accepted" in (tmp_path / "load.html").read_text()  # one page, of the merged test


def test_children_stop_when_the_parent_is_killed(tmp_path: Path, one_host: Any) -> None:
    _, proc, children = slow_sites_run(tmp_path, one_host, 500_000)
    time.sleep(0.5)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]
              for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in children if Path(f"/proc/{pid}").exists()
                and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]], "children outlived their parent"


def children_seen(proc: subprocess.Popen[str], seconds: float) -> set[int]:
    """The child processes `proc` had at any moment within `seconds` (or until it ended)."""
    seen: set[int] = set()
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            seen |= {int(pid) for pid in Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text().split()}
        except FileNotFoundError:
            break
        time.sleep(0.05)
    return seen


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="--processes auto forks only with two cores or more")
def test_by_default_jobs_of_different_hosts_run_in_processes_of_their_own(tmp_path: Path) -> None:
    with running_pyftpdlib(tmp_path / "a") as first, running_pyftpdlib(tmp_path / "b") as second:
        for server in (first, second):
            fill_sites(server, files=2)
            for n in range(SITES):
                fill(server.root / f"site{n}", {"big.bin": os.urandom(1_000_000)})
        jobs = mirror_jobs(tmp_path, [f"ftp://127.0.0.1:{first.port}/", f"ftp://127.0.0.1:{second.port}/"], limit=2)
        jobs.write_text(jobs.read_text().replace("local: out/site", "rate_limit: 2000000, local: out/site"))
        proc = start(jobs)
        assert len(children_seen(proc, 20)) == 2  # one process per host
        _, stderr = proc.communicate(timeout=60)
        assert proc.returncode == 0, stderr
        assert first.peak_connections <= 2 and second.peak_connections <= 2
        for n in range(SITES):
            assert tree(tmp_path / f"out/site{n}") == tree((first if n % 2 == 0 else second).root / f"site{n}")


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="--processes auto forks only with two cores or more")
def test_by_default_jobs_of_one_host_are_dealt_over_processes_that_share_its_limit(tmp_path: Path, one_host: Any) -> None:
    for n in range(SITES):
        fill(one_host.root / f"site{n}", {"big.bin": os.urandom(1_000_000)})
    jobs = mirror_jobs(tmp_path, [f"ftp://127.0.0.1:{one_host.port}/"], limit=4)
    jobs.write_text(jobs.read_text().replace("local: out/site", "rate_limit: 2000000, local: out/site"))
    proc = start(jobs)
    assert len(children_seen(proc, 20)) == 2
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert one_host.peak_connections == 4  # the whole limit, never more
    for n in range(SITES):
        assert tree(tmp_path / f"out/site{n}") == tree(one_host.root / f"site{n}")


def test_a_process_whose_jobs_are_done_leaves_the_whole_host_limit_to_the_other(tmp_path: Path, one_host: Any) -> None:
    """-P 2 deals site0, site2, site4 to one process and the odd sites to the other. The
    odd ones (a file each) end soon; site0's four big files then get all four
    connections (a static split of the limit, 2 and 2, kept them at two)."""
    fill(one_host.root / "site0", {f"big{i}.bin": os.urandom(300_000) for i in range(40)})
    for n in (1, 3, 5):
        shutil.rmtree(one_host.root / f"site{n}")
        fill(one_host.root / f"site{n}", {"small.bin": b"x" * 1000})
    jobs = mirror_jobs(tmp_path, [f"ftp://127.0.0.1:{one_host.port}/"], limit=4)
    jobs.write_text(jobs.read_text().replace("local: out/site0}", "rate_limit: 3000000, local: out/site0}"))
    proc = start(jobs, "-P", "2")
    children: set[int] = set()
    deadline = time.monotonic() + 30
    while proc.poll() is None and time.monotonic() < deadline:
        running = _children(proc.pid)
        children |= set(running)
        if len(children) == 2 and len(running) == 1:
            break  # the odd sites' process has ended
        time.sleep(0.02)
    most = 0
    while proc.poll() is None:
        most = max(most, one_host.open_connections)
        time.sleep(0.02)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 0, stderr
    assert len(children) == 2
    assert most == 4
    assert one_host.peak_connections == 4
    for n in range(SITES):
        assert tree(tmp_path / f"out/site{n}") == tree(one_host.root / f"site{n}")


def _children(pid: int) -> list[int]:
    """`pid`'s children still running (not those ended and not yet reaped)."""
    running = []
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            if Path(f"/proc/{child}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
                running.append(int(child))
    except FileNotFoundError:
        pass
    return running
