"""xfer `mail.fetch` against a plain imaplib script and `mbsync` (Debian `isync`), same run.

A real Dovecot (tests/servers/mail.py; needs root) serves MESSAGES messages of SIZE
bytes, written straight into the Maildirs and indexed once by a warm-up read, either all
in one account or spread over 20 accounts (10,000 messages: 500 each). Each client then
fetches everything into a fresh Maildir under /dev/shm:
  - xfer: `xfer run --quiet --report FILE jobs.yaml`, one `mail.fetch` job per account
    (the host's `max_connections` shared by all jobs); by default (`--processes auto`)
    20 accounts are dealt over the cores, which share that limit, and `--xfer-processes
    N` adds a row of `-P N` (1: one process);
  - imaplib: one thread per account, one connection each, `UID FETCH a:b (BODY.PEEK[])`
    in chunks of 100, one file per message (no fsync, no state: a lower bound);
  - mbsync: one Channel per account in one config, `mbsync -a`, one process (it runs
    the channels one after another).
Every client is a whole process timed from spawn to exit (harness.timed: start-up
included, CPU user+sys and peak RSS from wait4), the order rotating every round after
one untimed warm-up round. The server's CPU for each run is read from a cpuacct cgroup
around Postfix's and Dovecot's processes (`harness.CpuGroup`; IMAP sessions are Dovecot
processes of their own), SERVER_SETTLE seconds after the client's exit: on two cores a
client that makes the server work less, or works in parallel with it, is faster; the table gives medians, and every run (with `uptime`'s load)
goes to the JSON file. A run whose client fails or stores the wrong count is marked failed.

Full run (the lead's, on a quiet machine):

    python benchmarks/bench_mail_fetch.py --rounds 5

(= `--accounts 1,20 --messages 10000 --size 4096 --connections 8`), raw data in
benchmarks/results-mail-fetch.json. Smoke: `--rounds 1 --messages 500 --json
/tmp/smoke-fetch.json`.

mbsync comes from Debian's isync package, which the tests do not need, so
.ci/install-servers.sh does not install it; before a run:

    apt-get install -y isync
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from harness import XFER, CpuGroup, Run, median_extra, median_of, rotated, timed, tool_env, write_raw  # noqa: E402
from pool_passes import paired_ratio  # noqa: E402

from tests.servers.mail import MailServer, _ids, start_mail_server  # noqa: E402

IMAPLIB_SCRIPT = textwrap.dedent('''
    import imaplib, os, sys, threading
    host, port, dest = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    accounts = [arg.split(":", 1) for arg in sys.argv[4:]]
    def fetch(user, password):
        out = os.path.join(dest, user)
        for sub in ("tmp", "new", "cur"):
            os.makedirs(os.path.join(out, sub), exist_ok=True)
        client = imaplib.IMAP4(host, port)
        client.login(user, password)
        client.select("INBOX")
        uids = client.uid("SEARCH", None, "ALL")[1][0].split()
        for start in range(0, len(uids), 100):
            chunk = uids[start:start + 100]
            data = client.uid("FETCH", b"%s:%s" % (chunk[0], chunk[-1]), "(BODY.PEEK[])")[1]
            for n, item in enumerate(i for i in data if isinstance(i, tuple)):
                with open(os.path.join(out, "new", f"{start + n}.bench"), "wb") as f:
                    f.write(item[1].replace(b"\\r\\n", b"\\n"))
        client.logout()
    threads = [threading.Thread(target=fetch, args=account) for account in accounts]
    for t in threads: t.start()
    for t in threads: t.join()
''')


def fill(server: MailServer, users: list[str], total: int, size: int) -> None:
    """Write messages straight into the Maildirs (fast), then let Dovecot index and
    cache them with one full read, so no client pays for the first one.

    File names vary like real deliveries' (time, microseconds, pid). Names such as
    `{time+i}.M{i}P1.bench` collide in Dovecot's maildir file-name hash (10,000 names,
    about 1,000 distinct hashes): every IMAP session then spent about 1 s of server CPU
    on its first body fetch, which charged xfer (8 sessions) 8 times and the others once."""
    import imaplib

    uid, gid = _ids()
    body = ("x" * 75 + "\n") * max(1, (size - 300) // 76)
    for index in range(total):
        user = users[index % len(users)]
        path = server.maildir(user) / "cur" / f"{1700000000 + index}.M{index * 7919 % 1000000}P{index}.bench:2,S"
        path.write_text(
            f"From: bench@client.test\nTo: {server.address(user)}\nSubject: bench {index}\n"
            f"Message-ID: <bench{index}@client.test>\nDate: Mon, 01 Jan 2024 10:00:00 +0000\n\n{body}"
        )
        os.chown(path, uid, gid)
    for user in users:
        client = imaplib.IMAP4("127.0.0.1", server.imap_port)
        client.login(server.address(user), server.users[user])
        client.select("INBOX")
        client.uid("FETCH", "1:*", "(RFC822.SIZE INTERNALDATE BODY.PEEK[])")
        client.logout()


def count_files(dest: Path) -> int:
    return sum(len(files) for root, _, files in os.walk(dest) if os.path.basename(root) in ("new", "cur"))


def xfer_argv(server: MailServer, users: list[str], work: Path, connections: int) -> list[str]:
    jobs = "".join(
        f"  - name: {user}\n    kind: mail.fetch\n"
        f"    source: imap://{server.address(user)}:{server.users[user]}@127.0.0.1:{server.imap_port}/INBOX\n"
        f"    dest: {work / 'out' / user}\n    format: maildir\n"
        for user in users
    )
    (work / "jobs.yaml").write_text(
        f"defaults:\n  max_connections: {connections}\n  state: {work / 'state.db'}\n"
        f"hosts:\n  127.0.0.1:\n    max_connections: {connections}\njobs:\n{jobs}"
    )
    return [*XFER, "run", "--quiet", "--report", str(work / "report.json"), str(work / "jobs.yaml")]


def imaplib_argv(server: MailServer, users: list[str], work: Path) -> list[str]:
    accounts = [f"{server.address(user)}:{server.users[user]}" for user in users]
    script = work / "plain.py"
    script.write_text(IMAPLIB_SCRIPT)
    return [sys.executable, str(script), "127.0.0.1", str(server.imap_port), str(work / "out"), *accounts]


def mbsync_argv(server: MailServer, users: list[str], work: Path) -> list[str]:
    blocks = []
    for user in users:
        (work / "out" / user).mkdir(parents=True)
        blocks.append(textwrap.dedent(f"""
            IMAPAccount {user}
            Host 127.0.0.1
            Port {server.imap_port}
            User {server.address(user)}
            Pass {server.users[user]}
            SSLType None
            AuthMechs LOGIN

            IMAPStore {user}-remote
            Account {user}

            MaildirStore {user}-local
            Path {work / 'out' / user}/
            Inbox {work / 'out' / user}/INBOX

            Channel {user}
            Far :{user}-remote:
            Near :{user}-local:
            Patterns INBOX
            Create Near
            Sync Pull
            SyncState *
        """))
    config = work / "mbsyncrc"
    config.write_text("".join(blocks))
    config.chmod(0o600)
    return ["mbsync", "-q", "-c", str(config), "-a"]


ARGV = {"xfer": xfer_argv, "imaplib": imaplib_argv, "mbsync": mbsync_argv}


#: Seconds a server is given after a client's exit to end its sessions, before its CPU is read.
SERVER_SETTLE = 0.2


def run_client(tool: str, round_no: int, server: MailServer, users: list[str], work: Path,
               args: argparse.Namespace, cpu: CpuGroup | None = None) -> Run:
    # The same folder every round (emptied after each run): xfer's job file is then the
    # same file, whose validation its cache keeps, as a cron job's is.
    scratch = work / tool
    scratch.mkdir()
    try:
        if tool.startswith("xfer"):  # xfer-pN: `xfer run --processes N` (the accounts dealt over N processes)
            argv = xfer_argv(server, users, scratch, args.connections)
            argv += ["--processes", tool.removeprefix("xfer-p")] if tool != "xfer" else []
        else:
            argv = ARGV[tool](server, users, scratch)
        before = cpu.cpu() if cpu else 0.0
        run = timed(tool, round_no, [argv], cwd=scratch, env=args.env, log=scratch / "tool.log")
        stored = count_files(scratch / "out")
        run.extra = {"accounts": len(users), "stored": stored, "msg_s": round(stored / run.wall, 1)}
        if cpu:
            time.sleep(SERVER_SETTLE)
            run.extra["server_cpu"] = round(cpu.cpu() - before, 3)
        if tool.startswith("xfer") and (scratch / "report.json").exists():
            report = json.loads((scratch / "report.json").read_text())
            failed = report["totals"]["tasks_failed"] + report["totals"]["jobs_failed"]
            if failed:
                run.ok, run.note = False, f"xfer report: {failed} failed"
        if stored != args.messages:
            run.ok, run.note = False, (run.note + f" stored {stored} of {args.messages}").strip()
        return run
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000, help="in all, spread over the accounts")
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--accounts", default="1,20", help="comma-separated scenarios")
    parser.add_argument("--connections", type=int, default=8, help="xfer's per-host limit")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--xfer-processes", type=int, default=0, help="also `xfer run --processes N`")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results-mail-fetch.json")
    args = parser.parse_args()
    args.env = tool_env()
    tools = [tool for tool in ARGV if tool != "mbsync" or shutil.which("mbsync")]
    tools += [f"xfer-p{args.xfer_processes}"] if args.xfer_processes else []
    if "mbsync" not in tools:
        print("mbsync not installed (apt-get install -y isync): left out", file=sys.stderr)
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    started = time.time()
    runs: dict[str, list[Run]] = {}
    for accounts in (int(n) for n in args.accounts.split(",")):
        scenario = f"{accounts} account{'s' if accounts > 1 else ''}"
        work = Path(tempfile.mkdtemp(prefix="xfer-bench-fetch-", dir=base))
        server = start_mail_server(work / "server", users=accounts)
        cpu = CpuGroup.around(f"mail-{server.imap_port}", server.pids())
        try:
            users = sorted(server.users)
            fill(server, users, args.messages, args.size)
            for tool in tools:  # untimed: bytecode cache, Dovecot's caches
                run_client(tool, -1, server, users, work, args)
            for round_no in range(args.rounds):
                for tool in rotated(tools, round_no):
                    run = run_client(tool, round_no, server, users, work, args, cpu)
                    runs.setdefault(scenario, []).append(run)
                    print(f"  {scenario:11} {tool:8} {run.wall:7.3f}s {run.extra['msg_s']:9,.0f} msg/s cpu {run.cpu:5.2f}s"
                          f" server cpu {run.extra.get('server_cpu', float('nan')):5.2f}s"
                          f" load {run.load}" + ("" if run.ok else f"  FAILED {run.note}"), file=sys.stderr)
        finally:
            server.stop()
            if cpu:
                cpu.remove()
            shutil.rmtree(work, ignore_errors=True)
    summary: dict[str, Any] = {}
    print("| accounts | client | seconds, median (min-max) | messages/s | CPU s | server CPU s | xfer / client "
          "| per round |")
    print("|---|---|---|---|---|---|---|---|")
    for scenario, items in runs.items():
        rows = summary[scenario] = {}
        for tool in tools:
            mine = [run for run in items if run.tool == tool]
            wall = median_of(mine)
            rows[tool] = {"wall": round(wall, 4), "msg_s": round(args.messages / wall, 1),
                          "cpu": round(median_of(mine, "cpu"), 3),
                          "server_cpu": median_extra(mine, "server_cpu"),
                          "failed": sum(not run.ok for run in mine)}
        for tool in tools:
            rows[tool]["xfer_time_ratio"] = round(rows["xfer"]["wall"] / rows[tool]["wall"], 3)
            rows[tool]["paired_time_ratio"] = paired_ratio(items, "xfer", tool)
            walls = [run.wall for run in items if run.tool == tool]
            print(f"| {scenario} | {tool} | {rows[tool]['wall']:.2f} ({min(walls):.2f}-{max(walls):.2f}) "
                  f"| {rows[tool]['msg_s']:,.0f} | {rows[tool]['cpu']:.2f} | {rows[tool]['server_cpu'] or float('nan'):.2f} "
                  f"| {rows[tool]['xfer_time_ratio']:.2f} | {rows[tool]['paired_time_ratio']} |")
    write_raw(args.json, runs, summary, started, messages=args.messages, size=args.size,
              connections=args.connections)
    return 0 if all(run.ok for items in runs.values() for run in items) else 1


if __name__ == "__main__":
    sys.exit(main())
