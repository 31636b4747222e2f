"""IMAP and POP3 session load: xfer `mail.sessions` (stdlib imaplib/poplib, a thread
per session) against an asyncio IMAP client (aioimaplib) and against `rabid` (POP3).

A real Dovecot (tests/servers/mail.py; needs root) serves USERS accounts of MESSAGES
messages each (written into the Maildirs and indexed once by `bench_mail_fetch.fill`).
Each client is a whole process, run for DURATION seconds of closed-loop sessions at
each concurrency (`--sessions 10,100,500`):
  - IMAP, xfer: a `mail.sessions` job (LOGIN, SELECT, UID SEARCH ALL, COMMANDS steps
    of fetch_headers 4 : fetch_body 2 : search 1, LOGOUT);
  - IMAP, aioimaplib: the same scenario on asyncio, in this script (`--driver`), with
    the same HDR latency code (engine/mail/latency.py);
  - POP3, xfer: a `mail.sessions` job (LOGIN, STAT, COMMANDS RETR, QUIT);
  - POP3, rabid (Debian `postal`): `-p SESSIONS` connections reading whole mailboxes,
    stopped after DURATION; logins and RETRs counted from Dovecot's log (rabid prints
    its own counts once a minute only) — rabid gives no latency. Here (rabid 0.75,
    Dovecot 2.3.19) every rabid connection stops after its first RETR and waits, and
    rabid refuses `-p` above about 400 (499 exits with its usage): such runs are
    marked failed.
Figures per run: logins/s, commands/s, p99 per command (ms), client CPU (wait4: user
+ sys) and server CPU (Dovecot's processes, reaped children included, from /proc),
each also per command. Every run goes to the JSON file. A missing peer is skipped.

Full run (on a quiet machine; about 2 minutes per concurrency):

    python benchmarks/bench_mail_sessions.py --rounds 3

Smoke (what was run while the machine was shared): `--sessions 10 --duration 3
--rounds 1 --users 20 --json /tmp/smoke-sessions.json`.

Peers: `pip install aioimaplib` (the `bench` extra) and `apt-get install -y postal`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from harness import XFER, Run, load, rotated, timed, tool_env, write_raw  # noqa: E402

from xfer.mail.latency import Latency  # noqa: E402

WEIGHTS = {"fetch_headers": 4, "fetch_body": 2, "search": 1}


# -- the aioimaplib driver (runs in its own process) ----------------------------------


async def _aio_session(host: str, port: int, user: str, password: str, commands: int, rng: random.Random,
                       stats: dict[str, Any]) -> None:
    import aioimaplib

    def timed(name: str, began: float, ok: bool) -> None:
        stats["replies"][name] = stats["replies"].get(name, 0) + 1
        if ok:
            stats["latency"].setdefault(name, Latency()).record(time.monotonic() - began)
        else:
            stats["errors"] += 1

    began = time.monotonic()
    client = aioimaplib.IMAP4(host=host, port=port, timeout=60)
    try:
        await client.wait_hello_from_server()
        response = await client.login(user, password)
    except Exception:  # noqa: BLE001 - counted
        timed("LOGIN", began, False)
        return
    timed("LOGIN", began, response.result == "OK")
    if response.result != "OK":
        return
    began = time.monotonic()
    timed("SELECT", began, (await client.select("INBOX")).result == "OK")
    uids: list[str] = []
    names, weights = list(WEIGHTS), list(WEIGHTS.values())
    for step in ["search"] + rng.choices(names, weights, k=commands):
        began = time.monotonic()
        if step == "search":
            response = await client.uid_search("ALL")
            uids = response.lines[0].decode().split() if response.result == "OK" and response.lines else uids
            timed("SEARCH", began, response.result == "OK")
        elif uids:
            items = "(BODY.PEEK[HEADER])" if step == "fetch_headers" else "(BODY.PEEK[])"
            response = await client.uid("fetch", rng.choice(uids), items)
            timed("FETCH HEADER" if step == "fetch_headers" else "FETCH BODY", began, response.result == "OK")
    began = time.monotonic()
    timed("LOGOUT", began, (await client.logout()).result == "OK")


async def _aio_main(args: argparse.Namespace) -> dict[str, Any]:
    accounts = [line.split() for line in Path(args.users_file).read_text().splitlines() if line.strip()]
    stats: dict[str, Any] = {"replies": {}, "latency": {}, "errors": 0}
    deadline = time.monotonic() + args.duration
    counter = iter(range(10**9))

    async def loop(worker: int) -> None:
        rng = random.Random(worker)
        while time.monotonic() < deadline:
            number = next(counter)
            user, password = accounts[number % len(accounts)]
            await _aio_session(args.host, args.port, user, password, args.commands, rng, stats)

    started = time.monotonic()
    await asyncio.gather(*(loop(worker) for worker in range(args.sessions)))
    elapsed = time.monotonic() - started
    return {
        "elapsed_s": elapsed,
        "replies": stats["replies"],
        "errors": stats["errors"],
        "latency_ms": {name: latency.summary() for name, latency in stats["latency"].items()},
    }


# -- the harness side --------------------------------------------------------------------


def server_cpu(pids: list[int]) -> float:
    """CPU seconds of these processes, their reaped children included (/proc stat)."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += sum(int(value) for value in fields[11:15])  # utime stime cutime cstime
    return total / tick


def write_users(work: Path, server: Any, users: list[str]) -> Path:
    path = work / "users.txt"
    path.write_text("".join(f"{server.address(user)} {server.users[user]}\n" for user in users))
    return path


def xfer_job(work: Path, server: Any, users_file: Path, protocol: str, sessions: int, args: argparse.Namespace) -> Path:
    port = server.imap_port if protocol == "imap" else server.pop3_port
    weights = "{fetch_headers: 4, fetch_body: 2, search: 1}" if protocol == "imap" else "{retr: 1}"
    job = work / "jobs.yaml"
    job.write_text(
        f"defaults:\n  max_connections: {sessions + 10}\n  state: {work / 'state.db'}\n"
        f"hosts:\n  127.0.0.1:{port}:\n    max_connections: {sessions}\n"
        f"jobs:\n  - name: bench\n    kind: mail.sessions\n    server: {protocol}://127.0.0.1:{port}\n"
        f"    users: {{file: {users_file}}}\n    sessions: {sessions}\n    duration: {args.duration}\n"
        f"    commands: {args.commands}\n    weights: {weights}\n"
    )
    return job


def figures(replies: dict[str, Any], latency: dict[str, Any], elapsed: float, client_cpu: float,
            server: float) -> dict[str, Any]:
    commands = sum(replies.values())
    logins = replies.get("LOGIN", 0)
    return {
        "logins_per_s": round(logins / elapsed, 1) if elapsed else None,
        "commands_per_s": round(commands / elapsed, 1) if elapsed else None,
        "p99_ms": {name: value.get("p99") for name, value in sorted(latency.items())},
        "client_cpu_s": round(client_cpu, 3),
        "server_cpu_s": round(server, 3),
        "client_cpu_us_per_command": round(client_cpu / commands * 1e6, 1) if commands else None,
        "server_cpu_us_per_command": round(server / commands * 1e6, 1) if commands else None,
        "commands": commands,
    }


def run_xfer(work: Path, server: Any, users_file: Path, protocol: str, sessions: int, round_no: int,
             args: argparse.Namespace) -> Run:
    job = xfer_job(work, server, users_file, protocol, sessions, args)
    report = work / "report.json"
    before = server_cpu(server.pids())
    run = timed("xfer", round_no, [[*XFER, "run", "--quiet", "--report", str(report), str(job)]], cwd=work,
                env=args.env, log=work / "xfer.log")
    spent = server_cpu(server.pids()) - before
    summary = json.loads(report.read_text())["jobs"][0]["summary"]
    replies = {name: sum(counts.values()) for name, counts in summary["replies"].items()}
    run.extra = figures(replies, summary["latency_ms"], summary["elapsed_s"], run.cpu, spent)
    run.extra["refused"] = {name: {k: v for k, v in counts.items() if k != "OK"}
                            for name, counts in summary["replies"].items() if set(counts) - {"OK"}}
    return run


def run_aioimaplib(work: Path, server: Any, users_file: Path, sessions: int, round_no: int,
                   args: argparse.Namespace) -> Run:
    out = work / "aio.json"
    argv = [sys.executable, __file__, "--driver", "--host", "127.0.0.1", "--port", str(server.imap_port),
            "--users-file", str(users_file), "--sessions", str(sessions), "--duration", str(args.duration),
            "--commands", str(args.commands), "--json", str(out)]
    before = server_cpu(server.pids())
    run = timed("aioimaplib", round_no, [argv], cwd=work, env=args.env, log=work / "aio.log")
    spent = server_cpu(server.pids()) - before
    result = json.loads(out.read_text())
    run.extra = figures(result["replies"], result["latency_ms"], result["elapsed_s"], run.cpu, spent)
    run.extra["errors"] = result["errors"]
    return run


def run_rabid(work: Path, server: Any, users_file: Path, sessions: int, round_no: int, args: argparse.Namespace) -> Run:
    """rabid runs until stopped (SIGTERM; it ignores SIGINT) and prints its counts once a
    minute: logins and RETRs are counted from Dovecot's log instead (its Login lines,
    and `retr=` in its logout lines), over the run's window. A run in which rabid
    completes no session is marked failed."""
    log = server.root / "log" / "dovecot.log"
    offset = log.stat().st_size
    before_load, before = load(), server_cpu(server.pids())
    started = time.perf_counter()
    with open(work / "rabid.log", "wb") as out:
        proc = subprocess.Popen(["rabid", "-p", str(sessions), "-d", "100:0", f"[127.0.0.1]{server.pop3_port}",
                                 str(users_file)], stdout=out, stderr=subprocess.STDOUT, cwd=work)
        time.sleep(args.duration)
        os.kill(proc.pid, signal.SIGTERM)  # not Popen.send_signal: its poll() would reap an exited rabid
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
    wall = time.perf_counter() - started
    spent = server_cpu(server.pids()) - before
    cpu = usage.ru_utime + usage.ru_stime
    with open(log, "rb") as handle:
        handle.seek(offset)
        text = handle.read().decode("utf-8", "replace")
    logins = len(re.findall(r"pop3-login: Info: Login:", text))
    retrs = sum(int(count) for count in re.findall(r"pop3\(.*\bretr=(\d+)/", text))
    completed = len(re.findall(r"pop3\(.*Disconnected: Logged out", text))
    code = 0 if proc.returncode == -signal.SIGTERM else proc.returncode  # stopped by us: ok
    run = Run("rabid", round_no, wall, cpu, usage.ru_maxrss / 1024, before_load, code, ok=code == 0)
    run.extra = figures({"LOGIN": logins, "RETR": retrs}, {}, args.duration, cpu, spent)
    run.extra["sessions_completed"] = completed
    if code:
        run.note = f"rabid exited {code} before the end: {(work / 'rabid.log').read_text(errors='replace')[-200:]}"
    elif not completed:  # seen with rabid 0.75 and Dovecot 2.3: every connection waits after its first RETR
        run.ok, run.note = False, f"rabid completed no session ({logins} logins, {retrs} RETRs)"
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sessions", default="10,100,500", help="comma-separated concurrencies")
    parser.add_argument("--protocols", default="imap,pop3", help="comma-separated: imap, pop3")
    parser.add_argument("--users", type=int, default=500)
    parser.add_argument("--messages", type=int, default=20, help="per user")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--commands", type=int, default=10, help="steps per session")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results-mail-sessions.json")
    parser.add_argument("--driver", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--host", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--users-file", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.driver:
        args.sessions = int(args.sessions)
        args.json.write_text(json.dumps(asyncio.run(_aio_main(args))))
        return 0
    return bench(args)


def bench(args: argparse.Namespace) -> int:
    from bench_mail_fetch import fill

    from tests.servers.mail import start_mail_server

    args.env = tool_env()
    imap_tools = ["xfer"]
    try:
        import aioimaplib  # noqa: F401
        imap_tools.append("aioimaplib")
    except ImportError:
        print("aioimaplib not installed (pip install aioimaplib): left out", file=sys.stderr)
    pop_tools = ["xfer"] + (["rabid"] if shutil.which("rabid") else [])
    if "rabid" not in pop_tools:
        print("rabid not installed (apt-get install -y postal): left out", file=sys.stderr)
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    work = Path(tempfile.mkdtemp(prefix="xfer-bench-sessions-", dir=base))
    started = time.time()
    runs: dict[str, list[Run]] = {}
    server = start_mail_server(work / "server", users=args.users)
    try:
        users = sorted(server.users)
        fill(server, users, args.messages * len(users), args.size)
        users_file = write_users(work, server, users)
        for sessions in (int(n) for n in args.sessions.split(",")):
            for protocol, tools in (("imap", imap_tools), ("pop3", pop_tools)):
                if protocol not in args.protocols.split(","):
                    continue
                scenario = f"{protocol} {sessions} sessions"
                for round_no in range(-1, args.rounds):  # round -1: untimed warm-up
                    for tool in rotated(tools, max(0, round_no)):
                        scratch = work / f"{tool}-{protocol}-{sessions}-{round_no}"
                        scratch.mkdir()
                        if tool == "xfer":
                            run = run_xfer(scratch, server, users_file, protocol, sessions, round_no, args)
                        elif tool == "aioimaplib":
                            run = run_aioimaplib(scratch, server, users_file, sessions, round_no, args)
                        else:
                            run = run_rabid(scratch, server, users_file, sessions, round_no, args)
                        if round_no >= 0:
                            runs.setdefault(scenario, []).append(run)
                        extra = run.extra
                        print(f"  {scenario:20} {tool:10} logins/s {extra['logins_per_s']} commands/s "
                              f"{extra['commands_per_s']} cpu client {extra['client_cpu_s']} server "
                              f"{extra['server_cpu_s']} p99 {extra['p99_ms']} load {run.load}"
                              + ("" if run.ok else f" FAILED {run.note}"), file=sys.stderr)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)
    summary = {scenario: {tool: _medians([run for run in items if run.tool == tool])
                          for tool in {run.tool for run in items}} for scenario, items in runs.items()}
    print(json.dumps(summary, indent=2))
    write_raw(args.json, runs, summary, started, users=args.users, messages=args.messages, size=args.size,
              commands=args.commands, duration=args.duration)
    return 0 if all(run.ok for items in runs.values() for run in items) else 1


def _medians(runs: list[Run]) -> dict[str, Any]:
    def median(key: str) -> float | None:
        values = sorted(run.extra[key] for run in runs if run.extra.get(key) is not None)
        return values[len(values) // 2] if values else None

    keys = ("logins_per_s", "commands_per_s", "client_cpu_us_per_command", "server_cpu_us_per_command")
    return {key: median(key) for key in keys} | {"p99_ms": runs[len(runs) // 2].extra["p99_ms"] if runs else {}}

if __name__ == "__main__":
    sys.exit(main())
