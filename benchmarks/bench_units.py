"""The queue's cost per unit of a distributed run (issue 10): Redis round trips, bytes
and coordinator time per unit.

A redis-server on loopback and one `xfer worker` run for the whole benchmark (started
once, as a fleet's workers are); each round times the coordinator (`xfer run --broker`,
a whole process) on a job file of N units, for N = 1 and N = `--units`. Every unit is a
`mail.load` of one message to Postfix's `smtp-sink`, so the unit's own work is tiny and
what is measured is the queue: enqueue, claim, events back, acknowledgement.
`INFO commandstats` and `INFO stats` before and after each run give the Redis commands
and network bytes; the worker's CPU comes from /proc. Per unit = (N-unit run − 1-unit
run) / (N − 1).

    python benchmarks/bench_units.py --rounds 5 --units 200
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_mail import smtp_sink  # noqa: E402
from harness import XFER, Run, timed, tool_env, write_raw  # noqa: E402
from tests.servers.redis import redis_server  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def redis_counters(cli: Any) -> tuple[int, int]:
    """(commands processed, network bytes in + out) so far."""
    stats = dict(line.split(":", 1) for line in cli("info", "stats").splitlines() if ":" in line)
    return int(stats["total_commands_processed"]), int(stats["total_net_input_bytes"]) + int(stats["total_net_output_bytes"])


def job_file(work: Path, port: int, units: int) -> Path:
    lines = ["jobs:"]
    for index in range(units):
        lines += [f"  - name: u{index}", "    kind: mail.load", f"    smtp: smtp://127.0.0.1:{port}",
                  "    starttls: false", "    envelope: {from: a@client.test, to: sink@example.test}",
                  "    count: 1"]
    path = work / f"units-{units}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results-units.json")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="xfer-bench-units-", dir="/dev/shm"))
    env = tool_env()
    env["XFER_BROKER_KEY"] = subprocess.run([*XFER, "worker", "--new-key"], capture_output=True, text=True,
                                            env=env, check=True).stdout.strip().partition("=")[2]
    runs: dict[str, list[Run]] = {}
    started = time.time()
    with redis_server() as redis, smtp_sink(work) as sink:
        worker = subprocess.Popen([*XFER, "worker", "--broker", redis.url], env=env, stdout=subprocess.DEVNULL)
        try:
            time.sleep(2)
            sizes = (1, args.units)
            for round_no in range(-1, args.rounds):  # round -1: untimed warm-up
                for units in sizes if round_no % 2 else reversed(sizes):
                    job = job_file(work, sink.port, units)
                    commands, traffic = redis_counters(redis.cli)
                    worker_cpu = proc_cpu(worker.pid)
                    run = timed(f"{units} units", round_no, [[*XFER, "run", "--quiet", "--broker", redis.url, str(job)]],
                                cwd=work, env=env, log=work / "run.log")
                    after_commands, after_traffic = redis_counters(redis.cli)
                    run.extra = {"units": units, "redis_commands": after_commands - commands - 2,  # the INFOs
                                 "redis_bytes": after_traffic - traffic, "worker_cpu": round(proc_cpu(worker.pid) - worker_cpu, 3)}
                    problem = sink.settle(units)
                    if problem:
                        run.ok, run.note = False, problem
                    if round_no >= 0:
                        runs.setdefault(f"{units} units", []).append(run)
                    print(f"  {units:4} units  {run.wall:6.3f}s  cpu {run.cpu:5.2f}s  worker {run.extra['worker_cpu']:5.2f}s"
                          f"  redis {run.extra['redis_commands']} cmds {run.extra['redis_bytes']:,} B"
                          + ("" if run.ok else f"  FAILED {run.note}"), file=sys.stderr)
        finally:
            worker.terminate()
            worker.wait(10)
    one, many = runs["1 units"], runs[f"{args.units} units"]
    n = args.units - 1

    def per_unit(key: str, attr: bool = False) -> float:
        pick = (lambda run: getattr(run, key)) if attr else (lambda run: run.extra[key])
        return round((statistics.median(map(pick, many)) - statistics.median(map(pick, one))) / n, 6)

    summary = {
        "units": args.units,
        "coordinator_wall_s_per_unit": per_unit("wall", attr=True),
        "coordinator_cpu_s_per_unit": per_unit("cpu", attr=True),
        "worker_cpu_s_per_unit": per_unit("worker_cpu"),
        "redis_commands_per_unit": per_unit("redis_commands"),
        "redis_bytes_per_unit": per_unit("redis_bytes"),
        "one_unit_wall_s": round(statistics.median(run.wall for run in one), 3),
    }
    print(summary)
    write_raw(args.json, runs, summary, started)
    return 0 if all(run.ok for items in runs.values() for run in items) else 1


if __name__ == "__main__":
    sys.exit(main())
