"""SMTP load: xfer `mail.load` against Postfix's `smtp-source`, like with like (issue 15).

Both tools are whole processes timed the same way (harness.timed: wall from spawn to
exit, start-up included; CPU user+sys and peak RSS from wait4), against the same server
in the same run, the order alternating every round; the table gives medians and every
run goes to the JSON file. Closed loop, every connection reused for all its messages:

- smtp-source: `smtp-source -d -s N -m COUNT -l SIZE` (`-d`: send the next message over
  the same connection; without it, one message per connection);
- xfer: `xfer run --quiet --report FILE jobs.yaml`, one `mail.load` job with
  `concurrency: N` and `count: COUNT`, the host's `max_connections: N`.

The server's CPU for each run (smtp-sink's, or all of Postfix's processes: smtpd,
cleanup, qmgr, delivery) is read from a cpuacct cgroup around them (`harness.CpuGroup`)
once the run's messages are delivered: on two cores, what the server spends for a
client's way of sending is time the client does not get.

Same bytes on the wire: smtp-source's `-l` counts the body only and adds From, To, Date
and Message-Id (~120 bytes); xfer's `size` counts its headers, so xfer gets SIZE + 120.

Targets:
- sink: Postfix's `smtp-sink -u nobody -c 127.0.0.1:PORT 1000` (a C sink: measures the
  client), 10 connections; its counter (`-c`) checks that every message arrived;
- postfix: a real Postfix (tests/servers/mail.py, needs root) at 1, 10 and 50
  connections. After each run, outside the timing, the benchmark waits until Postfix
  has delivered every message and its queue is empty (no delivery or queue-file removal
  left to run), empties the Maildir and `sync`s, so the next timed run pays for none of
  it: its queue files, Maildir files and journal commits start from the same state
  whichever tool ran before. (Measured here: after 5,000 messages delivery and the queue
  had caught up when the last reply came, and the sync took ~10 ms, so the drift between
  rounds is not leftover work; the settle makes sure of it.)

Full run (the lead's, on a quiet machine):

    python benchmarks/bench_mail.py --rounds 5

(= `--scenarios sink,postfix --messages 10000 --postfix-messages 5000 --size 1024`),
raw data in benchmarks/results-mail.json. Smoke: `--rounds 1 --messages 500
--postfix-messages 200 --json /tmp/smoke-mail.json`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from harness import XFER, CpuGroup, Run, median_extra, median_of, rotated, timed, tool_env, write_raw  # noqa: E402
from pool_passes import paired_ratio  # noqa: E402
from tests.servers.common import free_port, wait_port  # noqa: E402

#: Bytes smtp-source adds to its `-l` body (From, To, Date, Message-Id, CRLFs).
SMTP_SOURCE_HEADERS = 120
TOOLS = ("xfer", "smtp-source")


@dataclass
class Target:
    """A server to load; `settle(n)` waits until the n messages of the last run have
    arrived (outside the timing) and says what is wrong if they did not. `cpu` counts
    the server's processes' CPU (delivery included, as it is settled), where it can."""

    name: str
    port: int
    to: str
    settle: Callable[[int], str]
    cpu: CpuGroup | None = None


@contextlib.contextmanager
def smtp_sink(work: Path) -> Iterator[Target]:
    port = free_port()
    log = work / "smtp-sink.out"
    with open(log, "wb") as out:
        process = subprocess.Popen(["smtp-sink", "-u", "nobody", "-c", f"127.0.0.1:{port}", "1000"],
                                   stdout=out, stderr=subprocess.STDOUT)
    seen = [0]

    def delivered() -> int:
        counts = re.findall(rb"mesg=(\d+)", log.read_bytes()[-400:])
        return int(counts[-1]) if counts else 0

    def settle(count: int) -> str:
        deadline = time.monotonic() + 10
        while delivered() < seen[0] + count and time.monotonic() < deadline:
            time.sleep(0.05)
        got, seen[0] = delivered() - seen[0], delivered()
        return "" if got == count else f"smtp-sink counted {got} messages, expected {count}"

    cpu = CpuGroup.around(f"smtp-sink-{port}", [process.pid])
    try:
        wait_port(port)
        yield Target("smtp-sink", port, "sink@example.test", settle, cpu)
    finally:
        process.terminate()
        process.wait(timeout=10)
        if cpu:
            cpu.remove()


@contextlib.contextmanager
def postfix(work: Path) -> Iterator[Target]:
    from tests.servers.mail import start_mail_server

    server = start_mail_server(work / "postfix", users=1)

    def settle(count: int) -> str:
        deadline = time.monotonic() + 120
        while (server.message_count("user1") < count or queued(server.root / "queue")) and time.monotonic() < deadline:
            time.sleep(0.1)
        got, left = server.message_count("user1"), queued(server.root / "queue")
        for sub in ("new", "cur"):
            for entry in os.scandir(server.maildir("user1") / sub):
                os.unlink(entry.path)
        os.sync()
        if left:
            return f"Postfix still had {left} queue files"
        return "" if got == count else f"Postfix delivered {got} messages, expected {count}"

    cpu = CpuGroup.around(f"postfix-{server.smtp_port}", server.pids())
    try:
        yield Target("Postfix", server.smtp_port, server.address("user1"), settle, cpu)
    finally:
        server.stop()
        if cpu:
            cpu.remove()


def queued(queue: Path) -> int:
    """Files in Postfix's message queues (incoming, active, deferred, hold, maildrop)."""
    return sum(len(files) for name in ("incoming", "active", "deferred", "hold", "maildrop")
               for _, _, files in os.walk(queue / name))


def xfer_job(work: Path, target: Target, connections: int, count: int, size: int) -> Path:
    job = work / "mail-load.yaml"
    job.write_text(f"""\
defaults: {{max_connections: 1000}}
hosts:
  127.0.0.1:{target.port}: {{max_connections: {connections}}}
jobs:
  - name: load
    kind: mail.load
    smtp: smtp://127.0.0.1:{target.port}
    starttls: false
    envelope: {{from: load@client.test, to: {target.to}}}
    size: {size + SMTP_SOURCE_HEADERS}
    concurrency: {connections}
    count: {count}
""")
    return job


def run_tool(tool: str, round_no: int, target: Target, connections: int, count: int, args: argparse.Namespace) -> Run:
    work: Path = args.work
    report = work / "report.json"
    report.unlink(missing_ok=True)
    if tool.startswith("xfer"):
        job = xfer_job(work, target, connections, count, args.size)
        argv = [*XFER, "run", "--quiet", "--report", str(report), str(job)]
        if tool != "xfer":  # xfer-wN: `--workers N` (issue 10)
            argv += ["--workers", tool.removeprefix("xfer-w")]
    else:
        argv = ["smtp-source", "-d", "-s", str(connections), "-m", str(count), "-l", str(args.size),
                "-f", "load@client.test", "-t", target.to, f"127.0.0.1:{target.port}"]
    before = target.cpu.cpu() if target.cpu else 0.0
    run = timed(tool, round_no, [argv], cwd=work, env=args.env, log=work / "tool.log")
    run.extra = {"connections": connections, "messages": count, "msg_s": round(count / run.wall, 1)}
    if tool.startswith("xfer") and report.exists():
        summary = json.loads(report.read_text())["jobs"][0]["summary"]
        run.extra["accepted"] = summary.get("accepted")
        run.extra["latency_ms"] = summary.get("latency_ms")
        if summary.get("accepted") != count:
            run.ok, run.note = False, f"xfer: {summary.get('accepted')} of {count} accepted"
    problem = target.settle(count)
    if target.cpu:
        run.extra["server_cpu"] = round(target.cpu.cpu() - before, 3)
    if problem:
        run.ok, run.note = False, (run.note + " " + problem).strip()
    return run


def bench(target: Target, levels: list[int], count: int, args: argparse.Namespace,
          runs: dict[str, list[Run]]) -> None:
    for tool in args.tools:  # untimed: fills the bytecode cache, wakes the server
        run_tool(tool, -1, target, levels[0], min(count, 200), args)
    for connections in levels:
        scenario = f"{target.name}, {connections} conn"
        for round_no in range(args.rounds):
            for tool in rotated(args.tools, round_no):
                run = run_tool(tool, round_no, target, connections, count, args)
                runs.setdefault(scenario, []).append(run)
                print(f"  {scenario:22} {tool:12} {run.wall:7.3f}s {run.extra['msg_s']:9,.0f} msg/s"
                      f" cpu {run.cpu:5.2f}s server cpu {run.extra.get('server_cpu', float('nan')):5.2f}s"
                      f" load {run.load}" + (f"  FAILED {run.note}" if not run.ok else ""),
                      file=sys.stderr)


def summarise(runs: dict[str, list[Run]], tools: list[str]) -> dict[str, Any]:
    summary: dict[str, Any] = {}
    for scenario, items in runs.items():
        rows = {}
        for tool in tools:
            mine = [run for run in items if run.tool == tool]
            wall = median_of(mine)
            rows[tool] = {"wall": round(wall, 4), "msg_s": round(mine[0].extra["messages"] / wall, 1),
                          "cpu": round(median_of(mine, "cpu"), 3),
                          "server_cpu": median_extra(mine, "server_cpu"),
                          "failed": sum(not run.ok for run in mine)}
        rows["ratio_xfer_to_smtp_source"] = round(rows["xfer"]["msg_s"] / rows["smtp-source"]["msg_s"], 3)
        rows["paired_ratio_xfer_to_smtp_source"] = paired_ratio(items, "smtp-source", "xfer")  # rates: times inverted
        for tool in tools:
            if tool.startswith("xfer-w"):
                rows[f"ratio_{tool}_to_xfer"] = round(rows[tool]["msg_s"] / rows["xfer"]["msg_s"], 3)
        summary[scenario] = rows
    return summary


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scenarios", default="sink,postfix", help="comma-separated: sink,postfix")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--messages", type=int, default=10_000, help="messages per run against smtp-sink")
    parser.add_argument("--postfix-messages", type=int, default=5_000, help="messages per run against Postfix")
    parser.add_argument("--sink-connections", default="10")
    parser.add_argument("--postfix-connections", default="1,10,50")
    parser.add_argument("--size", type=int, default=1024, help="smtp-source's -l (body bytes)")
    parser.add_argument("--xfer-workers", type=int, default=0,
                        help="also `xfer run --workers N` (a private redis-server and N worker processes)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results-mail.json")
    args = parser.parse_args()
    wanted = args.scenarios.split(",")
    args.tools = [*TOOLS, *([f"xfer-w{args.xfer_workers}"] if args.xfer_workers else [])]
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    args.work = Path(tempfile.mkdtemp(prefix="xfer-bench-mail-", dir=base))
    os.chmod(args.work, 0o755)
    args.env = tool_env()
    started = time.time()
    runs: dict[str, list[Run]] = {}
    try:
        if "sink" in wanted:
            with smtp_sink(args.work) as target:
                bench(target, [int(n) for n in args.sink_connections.split(",")], args.messages, args, runs)
        if "postfix" in wanted:
            with postfix(args.work) as target:
                bench(target, [int(n) for n in args.postfix_connections.split(",")], args.postfix_messages, args, runs)
    finally:
        shutil.rmtree(args.work, ignore_errors=True)
    summary = summarise(runs, args.tools)
    print("| target, connections | smtp-source msg/s | xfer msg/s | xfer / smtp-source (per round) "
          "| CPU s (smtp-source / xfer) | server CPU s (smtp-source / xfer) |")
    print("|---|---|---|---|---|---|")
    for scenario, rows in summary.items():
        server = [rows[tool]["server_cpu"] for tool in TOOLS]
        print(f"| {scenario} | {rows['smtp-source']['msg_s']:,.0f} | {rows['xfer']['msg_s']:,.0f} "
              f"| {rows['ratio_xfer_to_smtp_source']:.2f} ({rows['paired_ratio_xfer_to_smtp_source']}) "
              f"| {rows['smtp-source']['cpu']:.2f} / {rows['xfer']['cpu']:.2f} "
              f"| {' / '.join('-' if value is None else f'{value:.2f}' for value in reversed(server))} |")
        for tool in args.tools[len(TOOLS):]:
            print(f"| {scenario}, {tool} | | {rows[tool]['msg_s']:,.0f} | {rows[f'ratio_{tool}_to_xfer']:.2f} x one process "
                  f"| {rows[tool]['cpu']:.2f} |")
    write_raw(args.json, runs, summary, started, size=args.size, xfer_size=args.size + SMTP_SOURCE_HEADERS)
    return 0 if all(run.ok for items in runs.values() for run in items) else 1


if __name__ == "__main__":
    sys.exit(main())
