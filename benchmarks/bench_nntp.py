"""Header scan: xfer `nntp.scan` vs a plain nntplib script, against a real INN2 on loopback.

Loads ARTICLES articles over GROUPS groups (TAKETHIS, via tests/servers/inn.py), then,
ROUNDS times, the order rotating every round (after one untimed warm-up round), times
each client as a whole process (harness.timed: from spawn to exit, start-up included,
CPU and peak RSS from wait4), like with like:
- plain, 1 connection: benchmarks/plain_nntp.py — GROUP then one OVER per group,
  one JSON line per article (json.dumps and a write), what a user would write; and
  the same with one OVER per 2000 articles (how scripts page through big groups);
- plain, 4 connections: the groups dealt to 4 threads, one connection each;
- xfer, 1 and 4 connections: `xfer run --quiet --report FILE jobs.yaml`, one
  `nntp.scan` job over the same groups into JSONL (fresh state each run, so every run
  is a full scan), the host's `max_connections` 1 or 4.
Every output is counted after the timing. Then, once each, --bodies article bodies
(BODY per article in nntplib; xfer pipelines BODY with TCP_QUICKACK).
Every run (with `uptime`'s load) goes to the JSON file; the table gives medians.
Needs root and the Debian inn2 package (bash .ci/install-servers.sh).

Full run (the lead's, on a quiet machine):

    python benchmarks/bench_nntp.py --rounds 5

(= `--articles 100000 --groups 10 --bodies 500`), raw data in benchmarks/results-nntp.json.
Smoke: `--rounds 1 --articles 2000 --bodies 20 --json /tmp/smoke-nntp.json`.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from harness import XFER, Run, median_of, rotated, timed, tool_env, write_raw  # noqa: E402
from tests.servers.inn import make_article, start_news_server  # noqa: E402

PLAIN = str(ROOT / "benchmarks" / "plain_nntp.py")
#: client name -> (kind, connections, OVER step)
CLIENTS = {
    "plain nntplib (1 connection)": ("plain", 1, None),
    "plain nntplib, OVER per 2000": ("plain", 1, 2000),
    "plain nntplib (4 connections)": ("plain", 4, None),
    "xfer (1 connection)": ("xfer", 1, None),
    "xfer (4 connections)": ("xfer", 4, None),
}


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


def xfer_argv(server, groups: list[str], work: Path, connections: int, extra: str = "") -> list[str]:  # type: ignore[no-untyped-def]
    job = work / "bench.yaml"
    job.write_text(
        f"defaults:\n  state: {work / 'state.db'}\nhosts:\n  {server.host}:\n    max_connections: {connections}\n"
        f"jobs:\n  - name: bench\n    kind: nntp.scan\n    server: nntp://{server.host}:{server.reader_port}\n"
        f"    groups: {json.dumps(groups)}\n    jsonl: {work / 'out.jsonl'}\n{extra}"
    )
    return [*XFER, "run", "--quiet", "--report", str(work / "report.json"), str(job)]


def lines(work: Path) -> int:
    """Lines written by a client (plain's per-thread files included), counted after the timing."""
    return sum(sum(1 for _ in open(path, "rb")) for path in work.glob("out*"))


def run_client(name: str, round_no: int, server, groups: list[str], work: Path, args: argparse.Namespace) -> Run:  # type: ignore[no-untyped-def]
    kind, connections, step = CLIENTS[name]
    # The same folder every round (emptied after each run): xfer's job file is then the
    # same file, whose validation its cache keeps, as a cron job's is.
    scratch = work / f"run-{name}"
    scratch.mkdir()
    try:
        if kind == "xfer":
            argv = xfer_argv(server, groups, scratch, connections)
        else:
            argv = [sys.executable, PLAIN, server.host, str(server.reader_port), str(scratch / "out.jsonl"),
                    ",".join(groups), "--connections", str(connections)] + (["--step", str(step)] if step else [])
        run = timed(name, round_no, [argv], cwd=scratch, env=args.env, log=scratch / "tool.log")
        written = lines(scratch)
        expected = args.articles // len(groups) * len(groups)
        run.extra = {"connections": connections, "articles": written, "articles_s": round(written / run.wall)}
        if written != expected:
            run.ok, run.note = False, (run.note + f" wrote {written} of {expected}").strip()
        return run
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def bodies(server, group: str, work: Path, args: argparse.Namespace) -> list[Run]:  # type: ignore[no-untyped-def]
    """The BODY loop once each way, as whole processes."""
    runs = []
    for tool in ("plain nntplib BODY loop", "xfer fetch: all (1 connection)"):
        scratch = work / "bodies"
        scratch.mkdir()
        if tool.startswith("xfer"):
            argv = xfer_argv(server, [group], scratch, 1, f"    articles: 1-{args.bodies}\n    fetch: all\n")
        else:
            argv = [sys.executable, PLAIN, server.host, str(server.reader_port), str(scratch / "out"), group,
                    "--bodies", str(args.bodies)]
        run = timed(tool, 0, [argv], cwd=scratch, env=args.env, log=scratch / "tool.log")
        run.extra = {"bodies": args.bodies, "written": lines(scratch)}
        run.ok = run.ok and run.extra["written"] == args.bodies
        runs.append(run)
        shutil.rmtree(scratch)
    return runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--articles", type=int, default=100_000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bodies", type=int, default=500, help="BODY fetches compared once (0: skip)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results-nntp.json")
    args = parser.parse_args()
    args.env = tool_env()
    work = Path(tempfile.mkdtemp(prefix="bench-nntp-", dir="/dev/shm" if Path("/dev/shm").is_dir() else None))
    server = start_news_server(work)
    started = time.time()
    runs: dict[str, list[Run]] = {"scan": []}
    try:
        groups = [f"bench.group{i}" for i in range(args.groups)]
        loading = time.perf_counter()
        load(server, groups, args.articles)
        print(f"loaded {args.articles} articles in {len(groups)} groups in {time.perf_counter() - loading:.1f}s",
              file=sys.stderr)
        for name in CLIENTS:  # untimed: bytecode cache, INN's caches
            run_client(name, -1, server, groups, work, args)
        for round_no in range(args.rounds):
            for name in rotated(list(CLIENTS), round_no):
                run = run_client(name, round_no, server, groups, work, args)
                runs["scan"].append(run)
                print(f"  {name:30} {run.wall:7.3f}s cpu {run.cpu:5.2f}s load {run.load}"
                      + ("" if run.ok else f"  FAILED {run.note}"), file=sys.stderr)
        if args.bodies:
            runs["bodies"] = bodies(server, groups[0], work, args)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    summary: dict[str, Any] = {}
    base = median_of([run for run in runs["scan"] if run.tool == "plain nntplib (1 connection)"])
    print(f"{'':32} {'median s':>9} {'articles/s':>11} {'vs plain 1':>10} {'CPU s':>6} {'best s':>7}")
    for name, (_, connections, _) in CLIENTS.items():
        mine = [run for run in runs["scan"] if run.tool == name]
        median = median_of(mine)
        summary[name] = {"wall": round(median, 4), "articles_s": round(args.articles / median),
                         "vs_plain_1_connection": round(base / median, 2), "cpu": round(median_of(mine, "cpu"), 3),
                         "failed": sum(not run.ok for run in mine)}
        print(f"{name:32} {median:9.2f} {args.articles / median:11,.0f} {base / median:9.1f}x"
              f" {summary[name]['cpu']:6.2f} {min(run.wall for run in mine):7.2f}")
    for run in runs.get("bodies", []):
        print(f"{args.bodies} bodies, {run.tool}: {run.wall:.2f}s" + ("" if run.ok else f" FAILED {run.note}"))
    write_raw(args.json, runs, summary, started, articles=args.articles, groups=args.groups)
    return 0 if all(run.ok for items in runs.values() for run in items) else 1


if __name__ == "__main__":
    sys.exit(main())
