"""Item 7: NNTP connections reset in the middle of an OVER reply and of a BODY
reply. After the retries the outputs hold every article exactly once, in order.

Real INN2 (innd + nnrpd) behind tests/faults/proxy.py, which resets a connection a
few kB after it has seen the client send OVER (or BODY)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from tests.faults.proxy import Cut, FaultProxy
from tests.integration.ftp_helpers import job_report, run_cli, write_jobs
from tests.servers.inn import make_article, start_news_server

pytestmark = pytest.mark.timeout(240)

GROUP = "xfer.faults.reset"
COUNT = 240


def test_reset_mid_over_and_mid_body(tmp_path: Path) -> None:
    server = start_news_server(tmp_path / "inn")
    try:
        server.create_group(GROUP)
        ids = server.post_articles(
            make_article(GROUP, f"subject {i}", f"body {i}\n" + "text line\n" * 40) for i in range(COUNT)
        )
        with FaultProxy(server.reader_port) as proxy:
            proxy.faults.extend([Cut(after=3000, trigger=b"OVER "), Cut(after=3000, trigger=b"BODY ")])
            path = write_jobs(
                tmp_path,
                f"""
defaults: {{retry_backoff: 0.05}}
jobs:
  - name: scan
    kind: nntp.scan
    server: nntp://127.0.0.1:{proxy.port}
    groups: [{GROUP}]
    fetch: all
    chunk: 60
    max_connections: 2
    jsonl: out.jsonl
    sqlite: out.db
""",
            )
            code, report, output = run_cli(path)
            cuts = proxy.stats.cuts
    finally:
        server.stop()
    assert code == 0, output
    assert cuts == 2
    job = job_report(report, "scan")
    assert job["retries"] >= 2
    rows = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row["message_id"] for row in rows] == ids  # none missing, none twice, in order
    assert all(row["body"].startswith(f"body {n}\n") for n, row in enumerate(rows))
    db = sqlite3.connect(tmp_path / "out.db")
    assert sorted(r[0] for r in db.execute("SELECT message_id FROM articles")) == sorted(ids)
    state = sqlite3.connect(tmp_path / ".xfer/state.db")
    assert state.execute("PRAGMA integrity_check").fetchone() == ("ok",)
