"""nntp.scan against a real INN2 server on loopback (innd + nnrpd, tests/servers/inn.py).

One server per module, filled once: three corpus groups with known keywords and
threads, one big group for chunking; tests that add articles use groups of their own."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from xfer.errors import TransientError
from xfer.protocols.nntp import OVER_STEP, OVER_WINDOW, NntpConnector
from xfer.scheduler import Scheduler
from xfer.spec import load_job_file
from xfer.urls import parse_url
from tests.jobrun import run_scheduler
from tests.servers.inn import NewsServer, make_article, start_news_server

pytestmark = pytest.mark.timeout(300)

CORPUS = {"xfer.corpus.python": 1200, "xfer.corpus.misc": 300, "xfer.other.big": 2500}
WORDS = ("asyncio", "ftp", "python", "loop")


def _subject(i: int) -> str:
    words = [w for w, step in (("asyncio", 5), ("FTP", 7)) if i % step == 0]
    return f"topic {i // 10} " + " ".join(words)


def _body(i: int) -> str:
    words = [w for w, step in (("Python", 3), ("loop", 4)) if i % step == 0]
    return f"article {i}\n" + " ".join(words) + "\n"


def corpus_articles(group: str, count: int) -> Iterator[tuple[int, bytes, dict[str, str]]]:
    """Articles in threads of ten: a root, then replies referencing it and the previous one."""
    for i in range(count):
        root = i - i % 10
        refs = [] if i == root else [f"<{group}.{root}@t>"] + ([f"<{group}.{i - 1}@t>"] if i - 1 > root else [])
        subject = _subject(i) if i == root else "Re: " + _subject(root)
        truth = {"subject": subject, "body": _body(i), "id": f"<{group}.{i}@t>"}
        yield i, make_article(group, subject, truth["body"], message_id=truth["id"], references=refs), truth


@pytest.fixture(scope="module")
def news(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NewsServer, dict[str, list[dict[str, str]]]]]:
    server = start_news_server(tmp_path_factory.mktemp("inn"))
    try:
        truth: dict[str, list[dict[str, str]]] = {}
        batch = []
        for group, count in CORPUS.items():
            server.create_group(group)
            truth[group] = []
            for _, article, fact in corpus_articles(group, count):
                batch.append(article)
                truth[group].append(fact)
        server.create_group("xfer.corpus.empty")
        server.post_articles(batch)
        yield server, truth
    finally:
        server.stop()


def run_jobs(tmp_path: Path, body: str, *, name: str = "jobs.yaml") -> tuple[dict[str, Any], Scheduler]:
    path = tmp_path / name
    path.write_text(f"defaults:\n  state: {tmp_path / 'state.db'}\n" + body)
    report, scheduler = run_scheduler(load_job_file(path))
    return {job["name"]: job for job in report.as_dict()["jobs"]}, scheduler


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def scan_job(server: NewsServer, name: str, groups: str, extra: str = "") -> str:
    return (
        f"  - name: {name}\n    kind: nntp.scan\n    server: nntp://{server.host}:{server.reader_port}\n"
        f"    groups: {groups}\n" + "".join(f"    {line}\n" for line in extra.strip().splitlines())
    )


def test_full_scan_then_incremental(news, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, truth = news
    server.create_group("xfer.incr")
    server.post_articles(make_article("xfer.incr", f"first {i}", "x") for i in range(30))
    jobs = "jobs:\n" + scan_job(
        server, "harvest", '["xfer.corpus.*", xfer.other.big, xfer.incr]',
        f"jsonl: {tmp_path / 'all.jsonl'}\nsqlite: {tmp_path / 'all.db'}\nchunk: 500",
    )
    report, _ = run_jobs(tmp_path, jobs)
    assert report["harvest"]["status"] == "ok", report["harvest"]["errors"]
    rows = read_jsonl(tmp_path / "all.jsonl")
    for group, facts in truth.items():
        mine = [r for r in rows if r["group"] == group]
        assert [r["number"] for r in mine] == list(range(1, len(facts) + 1))  # article order, no gap
        assert [r["message_id"] for r in mine] == [f["id"] for f in facts]
        assert [r["subject"] for r in mine] == [f["subject"] for f in facts]
        assert all(r["xref"].endswith(f"{group}:{r['number']}") for r in mine)
    db = sqlite3.connect(tmp_path / "all.db")
    assert db.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == len(rows) == sum(CORPUS.values()) + 30

    again, _ = run_jobs(tmp_path, jobs)
    summary = again["harvest"]["summary"]
    assert summary["commands"] == {"GROUP": 5}  # one GROUP per group (LIST ACTIVE is cached), nothing else
    assert summary["groups_unchanged"] == 5
    assert len(read_jsonl(tmp_path / "all.jsonl")) == len(rows)

    new_ids = server.post_articles(make_article("xfer.incr", f"later {i}", "y") for i in range(7))
    third, _ = run_jobs(tmp_path, jobs)
    assert third["harvest"]["summary"]["articles_written"] == 7
    after = read_jsonl(tmp_path / "all.jsonl")
    assert [r["message_id"] for r in after[len(rows):]] == new_ids
    assert db.execute("SELECT COUNT(*) FROM articles").fetchone()[0] == len(after)


def test_first_n_reads_the_oldest_articles(news, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, truth = news
    jobs = "jobs:\n" + scan_job(server, "oldest", "[xfer.corpus.misc]", f"first: 7\njsonl: {tmp_path / 'f.jsonl'}")
    report, _ = run_jobs(tmp_path, jobs)
    assert report["oldest"]["status"] == "ok", report["oldest"]["errors"]
    rows = read_jsonl(tmp_path / "f.jsonl")
    assert [r["number"] for r in rows] == list(range(1, 8))
    assert [r["message_id"] for r in rows] == [f["id"] for f in truth["xfer.corpus.misc"][:7]]
    again, _ = run_jobs(tmp_path, jobs)  # a range, not incremental: the same seven again
    assert again["oldest"]["summary"]["articles_written"] == 7


def test_and_or_matching_is_exact(news, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, truth = news
    jobs = "jobs:\n" + scan_job(
        server, "watch", "[xfer.corpus.python, xfer.corpus.misc]",
        f"match: {{subject: {{any: [asyncio, ftp]}}, body: {{all: [python, LOOP]}}}}\nfetch: matched\n"
        f"jsonl: {tmp_path / 'w.jsonl'}",
    )
    report, _ = run_jobs(tmp_path, jobs)
    want = {
        f["id"]
        for group in ("xfer.corpus.python", "xfer.corpus.misc")
        for f in truth[group]
        if ("asyncio" in f["subject"].lower() or "ftp" in f["subject"].lower())
        and "python" in f["body"].lower() and "loop" in f["body"].lower()
    }
    header_pass = sum(
        1 for group in ("xfer.corpus.python", "xfer.corpus.misc") for f in truth[group]
        if "asyncio" in f["subject"].lower() or "ftp" in f["subject"].lower()
    )
    got = read_jsonl(tmp_path / "w.jsonl")
    assert want and {r["message_id"] for r in got} == want
    assert all(r["body"].startswith("article ") for r in got)
    assert report["watch"]["summary"]["commands"]["BODY"] == header_pass  # bodies only after the header filter


def test_chunked_scan_equals_unchunked(news, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, _ = news
    jobs = "hosts:\n  127.0.0.1:\n    max_connections: 4\njobs:\n" + "".join(
        scan_job(server, f"c{size}", "[xfer.other.big]", f"chunk: {size}\nthreads: true\njsonl: {tmp_path / f'c{size}.jsonl'}")
        for size in (97, 100000)
    )
    report, scheduler = run_jobs(tmp_path, jobs)
    assert report["c97"]["summary"]["commands"]["OVER"] == 26
    small, whole = (tmp_path / "c97.jsonl").read_bytes(), (tmp_path / "c100000.jsonl").read_bytes()
    assert small == whole and small.count(b"\n") == CORPUS["xfer.other.big"]
    assert max(pool.peak_in_use for pool in scheduler.pools) <= 4


def test_jobs_sharing_a_server_stay_within_its_limit(news, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, _ = news
    jobs = "hosts:\n  127.0.0.1:\n    max_connections: 2\njobs:\n" + "".join(
        scan_job(server, f"j{i}", '["xfer.corpus.*", xfer.other.big]', f"chunk: 100\njsonl: {tmp_path / f'j{i}.jsonl'}")
        for i in range(3)
    )
    report, scheduler = run_jobs(tmp_path, jobs)
    assert all(job["status"] == "ok" for job in report.values())
    (pool,) = list(scheduler.pools)
    assert pool.peak_in_use == 2
    # groups interleave chunk by chunk; within a group the order is the article order
    by_group = [
        sorted(read_jsonl(tmp_path / f"j{i}.jsonl"), key=lambda r: r["group"]) for i in range(3)
    ]
    assert by_group[0] == by_group[1] == by_group[2]
    assert len(by_group[0]) == sum(CORPUS.values())


def test_threads_excerpts_kill_and_since(news, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, _ = news
    group = "xfer.crafted"
    server.create_group(group)
    old = datetime(2020, 5, 1, tzinfo=timezone.utc)
    body = "In article <root@c>, Ann <a@x> wrote:\n> the question\n\n\nHere is how:\n\n>>> import asyncio\n>>> asyncio.run(main())\n| pipe quote\nDone.\n-- \nsig\n"
    articles = [
        make_article(group, "How to loop", "question\n", message_id="<root@c>", date=old),
        make_article(group, "Re: How to loop", body, message_id="<r1@c>", references=["<root@c>"]),
        make_article(group, "Re: How to loop", "deeper\n", message_id="<r2@c>", references=["<root@c>", "<r1@c>"]),
        make_article(group, "Re: How to loop", "orphan\n", message_id="<r3@c>", references=["<root@c>", "<lost@c>"]),
        make_article(group, "Re: How to loop", "no refs\n", message_id="<r4@c>"),
        make_article(group, "Spam thread", "buy\n", message_id="<spam@c>", date=old),
        make_article(group, "Re: Spam thread", "more\n", message_id="<spam2@c>", references=["<spam@c>"]),
        make_article(group, "Latest", "\n\n> quoted\nline 1\nline 2\n\n\nline 3\n", message_id="<last@c>"),
    ]
    server.post_articles(articles)
    jobs = "jobs:\n" + scan_job(
        server, "t", f"[{group}]",
        f"fetch: all\nexcerpt: 20\nthreads: true\nkill_threads: ['<spam@c>']\n"
        f"jsonl: {tmp_path / 't.jsonl'}\nsqlite: {tmp_path / 't.db'}",
    ) + scan_job(server, "latest", f"[{group}]", f"last: 1\nfetch: all\nexcerpt: 2\njsonl: {tmp_path / 'l.jsonl'}") + scan_job(
        server, "recent", f"[{group}]", f"since: 2023-01-01\njsonl: {tmp_path / 's.jsonl'}"
    )
    report, _ = run_jobs(tmp_path, jobs)
    assert all(job["status"] == "ok" for job in report.values()), report
    rows = {r["message_id"]: r for r in read_jsonl(tmp_path / "t.jsonl")}
    assert set(rows) == {"<root@c>", "<r1@c>", "<r2@c>", "<r3@c>", "<r4@c>", "<last@c>"}  # spam thread killed
    places = {mid: (r["thread_id"], r["depth"]) for mid, r in rows.items()}
    assert places["<root@c>"] == ("<root@c>", 0)
    assert places["<r1@c>"] == ("<root@c>", 1)
    assert places["<r2@c>"] == ("<root@c>", 2)
    assert places["<r3@c>"] == ("<root@c>", 1)  # missing parent <lost@c> pruned, promoted
    assert places["<r4@c>"] == ("<root@c>", 1)  # subject-only threading
    assert rows["<r1@c>"]["excerpt"] == ["Here is how:", "", ">>> import asyncio", ">>> asyncio.run(main())", "Done."]
    db = sqlite3.connect(tmp_path / "t.db")
    assert db.execute("SELECT articles FROM threads WHERE thread_id = '<root@c>'").fetchone() == (5,)
    assert [r["excerpt"] for r in read_jsonl(tmp_path / "l.jsonl")] == [["line 1", "line 2"]]
    assert {r["message_id"] for r in read_jsonl(tmp_path / "s.jsonl")} == set(rows) - {"<root@c>"} | {"<spam2@c>"}
    hits = subprocess.run(
        [sys.executable, "-m", "xfer", "news", "search", str(tmp_path / "t.db"), "asyncio OR orphan"],
        capture_output=True, text=True, check=True,
    ).stdout
    assert "xfer.crafted:2" in hits and "xfer.crafted:4" in hits and "xfer.crafted:3" not in hits


def test_password_never_in_output(tmp_path: Path) -> None:
    secret = "s3cret-Pass!"
    server = start_news_server(tmp_path, users={"reader": secret})
    try:
        server.create_group("xfer.auth")
        server.post_articles([make_article("xfer.auth", "hello", "world")])
        job = tmp_path / "auth.yaml"
        for password, ok in ((secret, True), ("wrong-" + secret, False)):
            job.write_text(
                f"defaults:\n  state: {tmp_path / 'state.db'}\n  retries: 0\n"
                f"hosts:\n  127.0.0.1:\n    user: reader\n    password: '{password}'\njobs:\n"
                f"  - name: a\n    kind: nntp.scan\n    server: nntp://127.0.0.1:{server.auth_port}\n"
                f"    groups: [xfer.auth]\n    jsonl: {tmp_path / 'a.jsonl'}\n"
            )
            done = subprocess.run(
                [sys.executable, "-m", "xfer", "run", str(job), "--json", "--report", str(tmp_path / "r.json")],
                capture_output=True, text=True,
            )
            assert (done.returncode == 0) is ok, done.stdout + done.stderr
            seen = done.stdout + done.stderr + (tmp_path / "r.json").read_text()
            if (tmp_path / "a.jsonl").exists():
                seen += (tmp_path / "a.jsonl").read_text()
            assert secret not in seen
            if not ok:
                assert "481" in seen or "uthentication" in seen
    finally:
        server.stop()


@pytest.mark.parametrize("example", ["nntp-harvest.yaml", "nntp-watch.yaml", "nntp-latest.yaml"])
def test_job_examples_run(news, tmp_path: Path, example: str, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    server, _ = news
    server.create_group("comp.lang.python")  # the examples' group; again is harmless
    server.post_articles(
        make_article("comp.lang.python", f"asyncio ftp question {i}", f"In article <q@x>, A wrote:\n> q\npython answer {i}\n")
        for i in range(3)
    )
    text = (Path(__file__).resolve().parents[2] / "jobs" / example).read_text()
    (tmp_path / example).write_text(text)
    monkeypatch.setenv("NEWS_SERVER", f"nntp://{server.host}:{server.reader_port}")
    done = subprocess.run(
        [sys.executable, "-m", "xfer", "run", str(tmp_path / example), "--json"], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    outputs = list((tmp_path / "news").glob("*.jsonl"))
    assert outputs and all(read_jsonl(path) for path in outputs)


def test_jsonl_only_scan_writes_what_the_dict_path_writes(news, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """A JSONL-only scan encodes OVER lines directly; with SQLite too, records go through
    dicts. Both must write the same bytes, whatever the headers hold."""
    server, _ = news
    group = "xfer.tricky"
    server.create_group(group)
    subjects = ['say "hi"', "=?utf-8?q?w=C3=B6rld?=", "café ünïcode", "LATIN1", "tab\there", "plain"]
    subjects = subjects * 3 + ["back\\slash"]  # a backslash sends its whole block the slow way: keep it last
    articles = [make_article(group, subject, "x\n", from_='"Doe, J." <j@x>' if i % 2 else "A <a@x>")
                for i, subject in enumerate(subjects)]
    server.post_articles(article.replace(b"LATIN1", b"caf\xe9") for article in articles)
    jobs = "jobs:\n" + scan_job(server, "fast", f"[{group}, xfer.corpus.misc]", f"chunk: 10\njsonl: {tmp_path / 'f.jsonl'}") + scan_job(
        server, "dicts", f"[{group}, xfer.corpus.misc]", f"chunk: 10\njsonl: {tmp_path / 'd.jsonl'}\nsqlite: {tmp_path / 'd.db'}"
    )
    report, _ = run_jobs(tmp_path, jobs)
    assert all(job["status"] == "ok" for job in report.values()), report
    # groups interleave chunk by chunk; compare each group's lines, in article order
    fast, dicts = (sorted((tmp_path / name).read_bytes().splitlines(), key=lambda line: json.loads(line)["group"])
                   for name in ("f.jsonl", "d.jsonl"))
    assert fast == dicts and len(fast) == len(subjects) + CORPUS["xfer.corpus.misc"]
    rows = [r for r in read_jsonl(tmp_path / "f.jsonl") if r["group"] == group]
    assert [r["subject"] for r in rows[:6]] == ['say "hi"', "wörld", "café ünïcode", "café", "tab here", "plain"]
    assert rows[-1]["subject"] == "back\\slash"


def test_big_replies_written_as_the_server_sent_them(news, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """OVER replies many socket reads long (both paths work on each piece as it arrives)
    give, byte for byte, the dict encoding of the reply as nntplib reads it in one go."""
    import nntplib

    from xfer.news.jsonl import encode_record
    from xfer.news.overview import OverviewFormat

    server, _ = news
    group = "xfer.pieces"
    server.create_group(group)
    tricky = ['say "hi"', "=?utf-8?q?w=C3=B6rld?=", "café ünïcode", "LATIN1", "tab\there", "back\\slash"]
    subjects = [tricky[i // 97 % len(tricky)] if i % 97 == 0 else f"subject {i} " + "x" * (i % 200) for i in range(3000)]
    server.post_articles(
        make_article(group, subject, "x\n", references=[f"<r{i}@t>", f"<s{i}@t>"][: i % 3]).replace(b"LATIN1", b"caf\xe9")
        for i, subject in enumerate(subjects)
    )
    with nntplib.NNTP(server.host, server.reader_port, readermode=True) as client:
        _, fmt = client._longcmdstring("LIST OVERVIEW.FMT")
        client.group(group)
        _, lines = client._longcmd(f"OVER 1-{len(subjects)}")
    first = {"server": f"{server.host}:{server.reader_port}", "group": group}
    records = OverviewFormat.from_lines(fmt).parse(b"".join(line + b"\r\n" for line in lines), first)
    expected = "".join(encode_record(record) + "\n" for record in records).encode()
    assert len(expected) > 20 * (1 << 16) and len(records) == len(subjects)

    jobs = "jobs:\n" + scan_job(server, "fast", f"[{group}]", f"chunk: 5000\njsonl: {tmp_path / 'f.jsonl'}") + scan_job(
        server, "dicts", f"[{group}]", f"chunk: 5000\njsonl: {tmp_path / 'd.jsonl'}\nsqlite: {tmp_path / 'd.db'}"
    )
    report, _ = run_jobs(tmp_path, jobs)
    assert all(job["status"] == "ok" for job in report.values()), report
    assert (tmp_path / "f.jsonl").read_bytes() == expected
    assert (tmp_path / "d.jsonl").read_bytes() == expected


def test_pipelined_over_keeps_the_session_in_step(news) -> None:  # type: ignore[no-untyped-def]
    """A range's OVER commands (OVER_STEP articles each) go out OVER_WINDOW at a time:
    steps past the group's end (423) feed nothing, refused steps fail the call only
    after every reply was read, and the session answers in step afterwards."""
    server, truth = news
    count = len(truth["xfer.corpus.python"])
    steps = -(-3 * count // OVER_STEP)
    assert steps > OVER_WINDOW

    async def scan() -> None:
        conn = await NntpConnector(parse_url(f"nntp://{server.host}:{server.reader_port}")).connect()
        try:
            pieces: list[bytes] = []
            with pytest.raises(TransientError, match="412"):  # no group selected: every step refused
                await conn.over(1, 3 * count, pieces.append)
            assert pieces == []
            await conn.select("xfer.corpus.python")
            size = await conn.over(1, 3 * count, pieces.append)
            data = b"".join(pieces)
            assert [int(line.split(b"\t")[0]) for line in data.splitlines()] == list(range(1, count + 1))
            assert size == len(data) and conn.commands["OVER"] == 2 * steps
            assert (await conn.group("xfer.corpus.misc")).count == len(truth["xfer.corpus.misc"])
        finally:
            await conn.close()

    asyncio.run(scan())
