"""Item 8: an SMTP server answering 4xx and 5xx during a load test.

The server is aiosmtpd (a real SMTP server library) with a handler that answers
`451` to recipients starting with `busy` and `550` to those starting with `reject`:
the replies are real SMTP on a real socket, only their choice is scripted."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from xfer.cli import main
from tests.servers.common import free_port


class Moody:
    """Counts every RCPT it sees per address prefix, and the messages it accepted."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rcpt: Counter[str] = Counter()
        self.accepted = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        prefix = address.split("@")[0].rstrip("0123456789")
        with self.lock:
            self.rcpt[prefix] += 1
        if prefix == "busy":
            return "451 4.3.0 try again later"
        if prefix == "reject":
            return "550 5.1.1 no such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.accepted += 1
        return "250 2.0.0 queued"


@pytest.fixture
def moody() -> Iterator[tuple[Moody, int]]:
    handler, port = Moody(), free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, server_hostname="moody.test")
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


def _load(tmp_path: Path, port: int, retries: int) -> dict[str, Any]:
    jobs = tmp_path / "jobs.yaml"
    jobs.write_text(f"""
defaults: {{retry_backoff: 0.01}}
jobs:
  - name: load
    kind: mail.load
    smtp: smtp://127.0.0.1:{port}
    envelope: {{from: load@client.test, to: [ok@moody.test, busy@moody.test, reject@moody.test]}}
    concurrency: 3
    count: 30
    retries: {retries}
""")
    report = tmp_path / "report.json"
    code = main(["run", str(jobs), "--report", str(report), "--quiet"])
    data = json.loads(report.read_text())
    data["exit_code_seen"] = code
    return data


@pytest.mark.parametrize("retries", [0, 2])
def test_4xx_retried_as_configured_5xx_rejected_totals_add_up(tmp_path: Path, moody: tuple[Moody, int], retries: int) -> None:
    handler, port = moody
    report = _load(tmp_path, port, retries)
    summary = report["jobs"][0]["summary"]
    assert summary["sent"] == 30
    assert summary["sent"] == summary["accepted"] + summary["rejected"] + summary["failed"]
    assert summary["accepted"] == handler.accepted == 10
    assert handler.rcpt["busy"] == 10 * (1 + retries)  # each 451 tried exactly 1 + retries times
    assert handler.rcpt["reject"] == 10  # a 550 is never retried
    assert handler.rcpt["ok"] == 10
    assert summary["reply_codes"].get("550") == 10
    assert report["jobs"][0]["retries"] == 10 * retries


def test_4xx_counts_as_temporary_failure_not_rejection(tmp_path: Path, moody: tuple[Moody, int]) -> None:
    """The issue: 4xx are temporary failures, 5xx rejections; the figures keep them apart."""
    _, port = moody
    summary = _load(tmp_path, port, 0)["jobs"][0]["summary"]
    assert summary["rejected"] == 10  # the 550s only
    assert summary["failed"] == 10  # the 451s: temporary
    assert summary["reply_codes"].get("451") == 10
