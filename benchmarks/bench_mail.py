"""xfer `mail.load` against Postfix's `smtp-source`, same machine, same run.

Targets: Postfix's `smtp-sink` (a C sink: measures the client) and a real Postfix
(from tests/servers/mail.py; needs root). For each target:
  1. closed loop, 1 / 10 / 50 connections, every connection reused for all its
     messages: messages/s of `smtp-source -d -s N` and of xfer (`concurrency: N`);
  2. open loop at 50% and 80% of xfer's measured maximum (50 connections):
     latency percentiles from each message's scheduled time, and late starts.

    python benchmarks/bench_mail.py [--messages 2000] [--duration 5] [--size 1024]

Prints a Markdown table. Runs are short on purpose (a shared 2-core machine varies by
up to 2x between runs): compare numbers taken in the same run only."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.servers.common import free_port, wait_port  # noqa: E402

CONNECTIONS = (1, 10, 50)


@contextlib.contextmanager
def smtp_sink() -> Iterator[tuple[str, int, str]]:
    port = free_port()
    user = ["-u", "nobody"] if os.geteuid() == 0 else []
    process = subprocess.Popen(
        ["smtp-sink", *user, f"127.0.0.1:{port}", "1000"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        wait_port(port)
        yield "smtp-sink", port, "sink@example.test"
    finally:
        process.terminate()
        process.wait(timeout=10)


@contextlib.contextmanager
def postfix(workdir: Path) -> Iterator[tuple[str, int, str]]:
    from tests.servers.mail import start_mail_server

    server = start_mail_server(workdir / "postfix", users=1)
    try:
        yield "Postfix", server.smtp_port, server.address("user1")
    finally:
        server.stop()


def smtp_source(port: int, sessions: int, messages: int, size: int, to: str) -> float:
    """messages/s of smtp-source with `sessions` reused connections."""
    started = time.perf_counter()
    subprocess.run(
        ["smtp-source", "-d", "-s", str(sessions), "-m", str(messages), "-l", str(size),
         "-f", "load@client.test", "-t", to, f"127.0.0.1:{port}"],
        check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=600,
    )
    return messages / (time.perf_counter() - started)


def xfer_load(workdir: Path, port: int, to: str, size: int, concurrency: int, **mode: float) -> dict:
    """Run one mail.load job in a fresh `xfer` process; its summary."""
    body = "\n".join(f"    {key}: {value}" for key, value in mode.items())
    job = workdir / "bench.yaml"
    job.write_text(f"""
defaults: {{max_connections: 1000}}
hosts:
  127.0.0.1:{port}: {{max_connections: {max(concurrency, 1)}}}
jobs:
  - name: bench
    kind: mail.load
    smtp: smtp://127.0.0.1:{port}
    starttls: false
    envelope: {{from: load@client.test, to: {to}}}
    size: {size}
    concurrency: {concurrency}
{body}
""")
    report = workdir / "report.json"
    subprocess.run([sys.executable, "-m", "engine", "run", str(job), "--report", str(report), "--quiet"],
                   check=False, cwd=ROOT, timeout=600)
    return json.loads(report.read_text())["jobs"][0]["summary"]


def bench_target(target, workdir: Path, args: argparse.Namespace) -> list[str]:  # type: ignore[no-untyped-def]
    rows = []
    with target as (name, port, to):
        best = 0.0
        for connections in CONNECTIONS:
            source = smtp_source(port, connections, args.messages, args.size, to)
            summary = xfer_load(workdir, port, to, args.size, connections, count=args.messages)
            ours = summary["throughput_per_s"] or 0.0
            best = max(best, ours)
            rows.append(f"| {name} | closed, {connections} conn | {source:,.0f} | {ours:,.0f} "
                        f"| p50 {summary['latency_ms']['p50']} / p99 {summary['latency_ms']['p99']} ms "
                        f"| {summary['accepted']}/{summary['sent']} accepted |")
        for share in (0.5, 0.8):
            rate = round(best * share)
            summary = xfer_load(workdir, port, to, args.size, 50, rate=rate, duration=args.duration)
            latency = summary["latency_ms"]
            rows.append(f"| {name} | open, {rate}/s ({share:.0%} of max) | – | {summary['throughput_per_s']:,.0f} "
                        f"| p50 {latency['p50']} / p90 {latency['p90']} / p99 {latency['p99']} / max {latency['max_ms']} ms "
                        f"| late starts {summary['late_starts']}/{summary['sent']} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=2000, help="messages per closed-loop run")
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per open-loop run")
    parser.add_argument("--size", type=int, default=1024, help="message size in bytes")
    parser.add_argument("--no-postfix", action="store_true", help="only smtp-sink (no root needed)")
    args = parser.parse_args()
    print(f"{os.cpu_count()} CPUs, {args.messages} messages of {args.size} bytes per closed-loop run, "
          f"{args.duration:g} s per open-loop run\n")
    print("| target | mode | smtp-source msg/s | xfer msg/s | xfer latency | counts |")
    print("|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bench-mail-") as tmp:
        workdir = Path(tmp)
        targets = [smtp_sink()] + ([] if args.no_postfix else [postfix(workdir)])
        for target in targets:
            for row in bench_target(target, workdir, args):
                print(row, flush=True)


if __name__ == "__main__":
    main()
