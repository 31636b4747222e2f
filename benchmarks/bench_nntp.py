"""Header scan: xfer `nntp.scan` vs a plain nntplib script, against a real INN2 on loopback.

Loads ARTICLES articles over GROUPS groups (TAKETHIS, via tests/servers/inn.py), then,
ROUNDS times in alternation, times:
- plain: the classic nntplib loop — GROUP then one OVER per group, sequential, one
  connection, writing one JSON line per article; and the same with one OVER per
  2000 articles (how scripts page through big groups);
- xfer N: an `nntp.scan` job over the same groups into JSONL with N connections
  (fresh state each round, so every run is a full scan).
Prints medians. Then fetches --bodies article bodies once each way (BODY per article
in nntplib; xfer pipelines BODY with TCP_QUICKACK). Needs root and the Debian inn2 package (bash .ci/install-servers.sh).

    python benchmarks/bench_nntp.py [--articles 100000] [--groups 10] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.events import EventBus  # noqa: E402
from engine.report import Report  # noqa: E402
from engine.scheduler import RunOptions, Scheduler  # noqa: E402
from engine.spec import load_job_file  # noqa: E402
from tests.servers.inn import make_article, start_news_server  # noqa: E402

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import nntplib


def load(server, groups: list[str], total: int) -> None:  # type: ignore[no-untyped-def]
    for group in groups:
        server.create_group(group)
    per = total // len(groups)
    articles = (
        make_article(group, f"subject {i} of {group}", f"body {i}\n", message_id=f"<{group}.{i}@bench>",
                     references=[f"<{group}.{i - 1}@bench>"] if i % 5 else [])
        for group in groups
        for i in range(per)
    )
    server.post_articles(articles, timeout=600)


def plain(server, groups: list[str], out: Path, step: int | None = None) -> int:  # type: ignore[no-untyped-def]
    """One OVER per group, or (step) one per `step` articles as scripts do for big groups."""
    written = 0
    with nntplib.NNTP(server.host, server.reader_port) as client, open(out, "w") as sink:
        for group in groups:
            _, _, first, last, _ = client.group(group)
            for low in range(first, last + 1, step or last + 1):
                high = min(last, low + (step or last + 1) - 1)
                _, overviews = client.over((low, high))
                for number, fields in overviews:
                    sink.write(json.dumps({"group": group, "number": number, **fields}) + "\n")
                    written += 1
    return written


def plain_bodies(server, group: str, count: int) -> int:  # type: ignore[no-untyped-def]
    """The classic loop: BODY per article, sequential."""
    with nntplib.NNTP(server.host, server.reader_port) as client:
        client.group(group)
        return sum(1 for number in range(1, count + 1) if client.body(str(number)))


def xfer(server, groups: list[str], work: Path, connections: int, extra: str = "") -> int:  # type: ignore[no-untyped-def]
    for old in work.glob("*"):
        old.unlink()
    job = work / "bench.yaml"
    job.write_text(
        f"defaults:\n  state: {work / 'state.db'}\nhosts:\n  {server.host}:\n    max_connections: {connections}\n"
        f"jobs:\n  - name: bench\n    kind: nntp.scan\n    server: nntp://{server.host}:{server.reader_port}\n"
        f"    groups: {json.dumps(groups)}\n    jsonl: {work / 'out.jsonl'}\n{extra}"
    )
    report, events = Report(), EventBus()
    events.subscribe(report)
    scheduler = Scheduler([load_job_file(job)], events, RunOptions())

    async def main() -> None:
        scheduler.build()
        try:
            await scheduler.run()
        finally:
            scheduler.close()

    import uvloop

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(main())
    (result,) = report.as_dict()["jobs"]
    if result["status"] != "ok":
        raise SystemExit(f"xfer run failed: {result['errors']}")
    return int(result["summary"]["articles_written"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--bodies", type=int, default=500, help="BODY fetches compared once (0: skip)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-nntp-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    server = start_news_server(work)
    try:
        groups = [f"bench.group{i}" for i in range(args.groups)]
        started = time.perf_counter()
        load(server, groups, args.articles)
        print(f"loaded {args.articles} articles in {len(groups)} groups in {time.perf_counter() - started:.1f}s")
        runs: dict[str, list[float]] = {
            "plain nntplib (1 connection)": [],
            "plain nntplib, OVER per 2000": [],
            "xfer (1 connection)": [],
            "xfer (4 connections)": [],
        }
        for _ in range(args.rounds):
            for name in runs:
                target = work / name.replace(" ", "_").replace(",", "")
                target.mkdir(exist_ok=True)
                started = time.perf_counter()
                if name.startswith("plain"):
                    count = plain(server, groups, target / "out.jsonl", 2000 if "2000" in name else None)
                else:
                    count = xfer(server, groups, target, 4 if "4" in name else 1)
                runs[name].append(time.perf_counter() - started)
                lines = sum(1 for _ in open(target / "out.jsonl", "rb"))  # checked outside the timing
                assert count == lines == args.articles // len(groups) * len(groups), (name, count, lines)
        base = statistics.median(runs["plain nntplib (1 connection)"])
        print(f"{'':32} {'median s':>9} {'articles/s':>11} {'vs plain':>9} {'best s':>7}")
        for name, times in runs.items():
            median = statistics.median(times)
            print(f"{name:32} {median:9.2f} {args.articles / median:11,.0f} {base / median:8.1f}x {min(times):7.2f}")
        if args.bodies:
            started = time.perf_counter()
            plain_bodies(server, groups[0], args.bodies)
            slow = time.perf_counter() - started
            started = time.perf_counter()
            (work / "bodies").mkdir(exist_ok=True)
            count = xfer(server, groups[:1], work / "bodies", 1, f"    articles: 1-{args.bodies}\n    fetch: all\n")
            fast = time.perf_counter() - started
            assert count == args.bodies
            print(f"{args.bodies} bodies: plain nntplib BODY loop {slow:.2f}s, xfer fetch: all (1 connection) "
                  f"{fast:.2f}s ({slow / fast:.0f}x)")
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
