"""nntp.scan against INN: what waits behind a slow or failed chunk stays bounded.

The chunk tasks are wrapped (our code, not the server's) so that one chunk is slow
(it starts only after every other chunk of its round ended) or fails."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xfer.errors import PermanentError
from xfer.kinds import nntp_scan
from xfer.news import sequencer
from xfer.spec import load_job_file
from tests.jobrun import run_scheduler
from tests.servers.inn import NewsServer, make_article, start_news_server

pytestmark = pytest.mark.timeout(300)

GROUP, ARTICLES, CHUNK, CONNECTIONS = "xfer.bound", 600, 20, 4
LIMIT = 16_000  # under one chunk of bodies (20 x ~1 KB): the bound is the limit plus a chunk per connection
BODY = "line of text for the body\n" * 40


@pytest.fixture(scope="module")
def news(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NewsServer]:
    server = start_news_server(tmp_path_factory.mktemp("inn"))
    try:
        server.create_group(GROUP)
        server.post_articles(make_article(GROUP, f"subject {i}", f"{i}\n{BODY}") for i in range(ARTICLES))
        yield server
    finally:
        server.stop()


class Watch:
    """Wraps ChunkTask.work: the most records that ever waited, and a slow or failing chunk.

    The slow chunk starts once no other chunk is fetching, one has ended (so something
    is held behind it), and either every other one has ended or the rest wait for their
    turn."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, *, slow: int | None = None, fail: int | None = None) -> None:
        self.peak_records, self.ended, self.active = 0, 0, 0
        original = nntp_scan.ChunkTask.work

        async def work(task: nntp_scan.ChunkTask, conn: Any, ctx: Any) -> dict[str, Any]:
            if task.index == fail:
                raise PermanentError("this chunk fails (test)")
            if task.index == slow:
                while self.active or not self.ended or (
                    self.ended < ARTICLES // CHUNK - 1 and not getattr(task.job.sequencer, "waiting", 0)
                ):
                    await asyncio.sleep(0.01)
                return await original(task, conn, ctx)
            self.active += 1
            try:
                return await original(task, conn, ctx)
            finally:
                self.active -= 1
                self.ended += 1
                self.peak_records = max(self.peak_records, sum(task.job.sequencer.held_back().values()))

        monkeypatch.setattr(nntp_scan.ChunkTask, "work", work)
        monkeypatch.setattr(sequencer, "HELD_LIMIT", LIMIT, raising=False)


def _scan(server: NewsServer, tmp_path: Path) -> dict[str, Any]:
    path = tmp_path / "jobs.yaml"
    path.write_text(
        f"defaults:\n  state: {tmp_path / 'state.db'}\n  retries: 0\n"
        f"hosts:\n  127.0.0.1:\n    max_connections: {CONNECTIONS}\n"
        f"jobs:\n  - name: s\n    kind: nntp.scan\n    server: nntp://{server.host}:{server.reader_port}\n"
        f"    groups: [{GROUP}]\n    fetch: all\n    chunk: {CHUNK}\n    jsonl: {tmp_path / 'out.jsonl'}\n"
    )
    report, _ = run_scheduler(load_job_file(path))
    return report.as_dict()["jobs"][0]


def _numbers(tmp_path: Path) -> list[int]:
    return [json.loads(line)["number"] for line in (tmp_path / "out.jsonl").read_text().splitlines()]


def _bound() -> int:
    """Records: what fits under the limit, plus one chunk per connection still arriving."""
    per_article = len(BODY) + 4
    return LIMIT // per_article + 1 + CONNECTIONS * CHUNK


def test_a_slow_first_chunk_holds_back_a_bounded_amount_and_all_is_written(
    news: NewsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = Watch(monkeypatch, slow=0)
    job = _scan(news, tmp_path)
    assert job["status"] == "ok", job["errors"]
    assert _numbers(tmp_path) == list(range(1, ARTICLES + 1))  # complete, in order
    assert 0 < watch.peak_records <= _bound(), watch.peak_records
    assert job["summary"]["held_peak_bytes"] <= LIMIT + CONNECTIONS * CHUNK * (len(BODY) + 4)


def test_after_a_failed_chunk_later_ones_stop_and_the_next_run_reads_them(
    news: NewsServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watch = Watch(monkeypatch, fail=1)
    job = _scan(news, tmp_path)
    assert job["status"] == "failed"
    assert _numbers(tmp_path) == list(range(1, CHUNK + 1))  # up to the gap only
    assert watch.peak_records <= _bound(), watch.peak_records
    assert job["summary"]["commands"]["BODY"] <= CHUNK + _bound()  # later chunks were not all fetched
    monkeypatch.undo()
    again = _scan(news, tmp_path)
    assert again["status"] == "ok", again["errors"]
    assert _numbers(tmp_path) == list(range(1, ARTICLES + 1))
