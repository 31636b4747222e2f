"""Item 10: SIGTERM during each kind of job. `xfer run` exits 143, writes its report,
leaves a sound state DB (`PRAGMA integrity_check`), and a re-run completes the job.

Each server is real (pyftpdlib, INN2, aiosmtpd, Postfix + Dovecot) behind
tests/faults/proxy.py, which delays every reply so that the signal lands mid-job;
the re-run goes through the same proxy with the delay off. (The SIGINT/SIGTERM exit
codes on a mirror without the state and re-run checks: tests/integration/test_run_signals.py.)"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from tests.faults.proxy import FaultProxy
from tests.integration.ftp_helpers import REPO, fill, job_report, run_cli, tree, write_jobs
from tests.servers.common import free_port, wait_port
from tests.servers.ftp import running_pyftpdlib

pytestmark = pytest.mark.timeout(300)

Check = Callable[[dict[str, Any]], None]


def _sigterm_run(path: Path, proxy: FaultProxy, tmp_path: Path) -> dict[str, Any]:
    """Start `xfer run`, SIGTERM it once it has talked to the server for a while."""
    report_path = tmp_path / "stopped.json"
    proc = subprocess.Popen(
        [sys.executable, "-m", "xfer", "run", str(path), "--report", str(report_path), "--quiet"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    deadline = time.monotonic() + 60
    while proxy.stats.connections == 0 and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.02)
    time.sleep(1.0)
    assert proc.poll() is None, "the job ended before the signal: slow the server down more"
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    assert "Traceback" not in out + err
    report = json.loads(report_path.read_text())
    assert report["stopped_by"] == "SIGTERM" and report["exit_code"] == 143
    return report


def _state_sound(tmp_path: Path) -> None:
    db = sqlite3.connect(tmp_path / ".xfer" / "state.db")
    assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    runs = db.execute("SELECT exit_code FROM runs ORDER BY id").fetchall()
    assert runs and runs[0] == (143,)  # the stopped run is in the history


@contextmanager
def _ftp(tmp_path: Path, kind: str) -> Iterator[tuple[str, FaultProxy, Check]]:
    with running_pyftpdlib(tmp_path / "srv") as server, FaultProxy(server.port, ftp=True) as proxy:
        fill(server.root, {f"d{i % 3}/f{i:02d}.bin": bytes([i]) * (20_000 + i) for i in range(30)})
        url = server.url("/", with_password=True).replace(f":{server.port}/", f":{proxy.port}/")
        if kind == "ftp.mirror":
            job = f"{{name: j, kind: ftp.mirror, remote: '{url}', local: out}}"
            want = tree(server.root)
        else:
            job = f"{{name: j, kind: ftp.pull, remote: '{url}d1/', files: ['*.bin'], local: out}}"
            want = tree(server.root / "d1")

        def check(report: dict[str, Any]) -> None:
            assert tree(tmp_path / "out") == want
            assert not list((tmp_path / "out").rglob("*.part"))

        yield job, proxy, check


@contextmanager
def _nntp(tmp_path: Path, kind: str) -> Iterator[tuple[str, FaultProxy, Check]]:
    from tests.servers.inn import make_article, start_news_server

    server = start_news_server(tmp_path / "inn")
    try:
        server.create_group("xfer.sig")
        ids = server.post_articles(make_article("xfer.sig", f"s {i}", f"b {i}\n") for i in range(200))
        with FaultProxy(server.reader_port) as proxy:
            job = (f"{{name: j, kind: nntp.scan, server: 'nntp://127.0.0.1:{proxy.port}', groups: [xfer.sig], "
                   "fetch: all, chunk: 20, jsonl: out.jsonl}")

            def check(report: dict[str, Any]) -> None:
                rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
                assert [row["message_id"] for row in rows] == ids

            yield job, proxy, check
    finally:
        server.stop()


class _Sink:
    def __init__(self) -> None:
        self.lock, self.count = threading.Lock(), 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.count += 1
        return "250 2.0.0 queued"


@contextmanager
def _mail_load(tmp_path: Path, kind: str) -> Iterator[tuple[str, FaultProxy, Check]]:
    sink, port = _Sink(), free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        with FaultProxy(port) as proxy:
            job = (f"{{name: j, kind: mail.load, smtp: 'smtp://127.0.0.1:{proxy.port}', count: 40, concurrency: 2, "
                   "envelope: {from: a@client.test, to: b@sink.test}}")

            def check(report: dict[str, Any]) -> None:
                summary = job_report(report, "j")["summary"]
                assert summary["sent"] == summary["accepted"] == 40

            yield job, proxy, check
    finally:
        controller.stop()


@contextmanager
def _mail_roundtrip(tmp_path: Path, kind: str) -> Iterator[tuple[str, FaultProxy, Check]]:
    from tests.servers.mail import start_mail_server

    server = start_mail_server(tmp_path / "mail")
    try:
        with FaultProxy(server.smtp_port) as proxy:
            user = server.address("user1")
            job = (f"{{name: j, kind: mail.roundtrip, smtp: 'smtp://127.0.0.1:{proxy.port}', "
                   f"fetch: 'imap://127.0.0.1:{server.imap_port}', count: 10, timeout: 30, poll_interval: 0.05, "
                   f"envelope: {{from: probe@client.test, to: {user}}}}}\n"
                   f"hosts:\n  '127.0.0.1:{server.imap_port}': {{user: {user}, password: {server.users['user1']}}}")

            def check(report: dict[str, Any]) -> None:
                assert job_report(report, "j")["status"] == "ok", job_report(report, "j")["errors"]

            yield job, proxy, check
    finally:
        server.stop()


SETUPS = {
    "ftp.mirror": _ftp, "ftp.pull": _ftp, "nntp.scan": _nntp, "mail.load": _mail_load,
    "mail.roundtrip": _mail_roundtrip,
}


@pytest.mark.parametrize("kind", list(SETUPS))
def test_sigterm_then_rerun(tmp_path: Path, kind: str) -> None:
    with SETUPS[kind](tmp_path, kind) as (job, proxy, check):
        proxy.delay = 0.15
        path = write_jobs(tmp_path, f"defaults: {{grace_period: 0.5}}\njobs:\n  - {job}\n")
        stopped = _sigterm_run(path, proxy, tmp_path)
        assert job_report(stopped, "j")["status"] in ("cancelled", "failed")
        _state_sound(tmp_path)
        proxy.delay = 0
        code, report, output = run_cli(path)
        assert code == 0, output
        check(report)
        _state_sound(tmp_path)


def test_sigterm_mid_pipelined_load_counts_every_message(tmp_path: Path) -> None:
    """smtp-sink pipelines: a message whose content went out when the signal came, and
    whose reply had not, is counted failed ('unanswered'), so the outcomes add up."""
    port = free_port()
    sink = subprocess.Popen(["smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{port}", "1000"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    try:
        wait_port(port)
        with FaultProxy(port) as proxy:
            proxy.delay = 0.15
            path = write_jobs(tmp_path, (
                "defaults: {grace_period: 0.5}\njobs:\n"
                f"  - {{name: j, kind: mail.load, smtp: 'smtp://127.0.0.1:{proxy.port}', count: 400, concurrency: 2, "
                "envelope: {from: a@client.test, to: b@sink.test}}\n"
            ))
            summary = job_report(_sigterm_run(path, proxy, tmp_path), "j")["summary"]
    finally:
        sink.kill()
        sink.wait()
    assert 0 < summary["sent"] < 400
    assert summary["sent"] == summary["accepted"] + summary["rejected"] + summary["failed"], summary
