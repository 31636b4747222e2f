"""xfer `mail.fetch` against a plain imaplib script and `mbsync` (Debian `isync`), same run.

A real Dovecot (tests/servers/mail.py; needs root) serves N messages of SIZE bytes,
written straight into the Maildirs and indexed once by a warm-up SELECT, either all
in one account or spread over 20 accounts. Each client then fetches everything into
a fresh Maildir under /dev/shm:
  - xfer: one `mail.fetch` job per account (`batch` UIDs per UID FETCH, the host's
    `max_connections` shared by all jobs);
  - imaplib: one thread per account, one connection each, `UID FETCH a:b (BODY.PEEK[])`
    in chunks of 100, one file per message (no fsync, no state: a lower bound);
  - mbsync: one Channel per account, `mbsync -a` (channels run one after another).
Each client runs `--runs` times (into a fresh Maildir each time); the table shows the
median wall time, its messages/s, and the CPU seconds (user+sys of the client process
and its children) of that median run.

    python benchmarks/bench_mail_fetch.py [--messages 10000] [--size 4096] [--connections 8] [--runs 3]

Runs are short on purpose (a shared 2-core machine varies by up to 2x between runs):
compare numbers taken in the same run only."""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

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


def measure(argv: list[str], cwd: Path | None = None) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the child tree) of one command."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(argv, cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def count_files(dest: Path) -> int:
    return sum(len(files) for root, _, files in os.walk(dest) if os.path.basename(root) in ("new", "cur"))


def run_xfer(server: MailServer, users: list[str], work: Path, connections: int) -> tuple[float, float, int]:
    jobs = "".join(
        f"  - name: {user}\n    kind: mail.fetch\n"
        f"    source: imap://{server.address(user)}:{server.users[user]}@127.0.0.1:{server.imap_port}/INBOX\n"
        f"    dest: out/{user}\n    format: maildir\n"
        for user in users
    )
    (work / "jobs.yaml").write_text(
        f"defaults:\n  max_connections: {connections}\n"
        f"hosts:\n  127.0.0.1:\n    max_connections: {connections}\njobs:\n{jobs}"
    )
    wall, cpu = measure([sys.executable, "-m", "engine", "run", str(work / "jobs.yaml"), "--quiet"], cwd=ROOT)
    return wall, cpu, count_files(work / "out")


def run_imaplib(server: MailServer, users: list[str], work: Path) -> tuple[float, float, int]:
    accounts = [f"{server.address(user)}:{server.users[user]}" for user in users]
    script = work / "plain.py"
    script.write_text(IMAPLIB_SCRIPT)
    wall, cpu = measure([sys.executable, str(script), "127.0.0.1", str(server.imap_port), str(work / "out"), *accounts])
    return wall, cpu, count_files(work / "out")


def run_mbsync(server: MailServer, users: list[str], work: Path) -> tuple[float, float, int] | None:
    if shutil.which("mbsync") is None:
        return None
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
    wall, cpu = measure(["mbsync", "-q", "-c", str(config), "-a"])
    return wall, cpu, count_files(work / "out")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--connections", type=int, default=8, help="xfer's per-host limit")
    parser.add_argument("--runs", type=int, default=3, help="runs per client (the median is shown)")
    args = parser.parse_args()
    base = Path("/dev/shm") if Path("/dev/shm").is_dir() else Path(tempfile.gettempdir())
    rows = ["| accounts | client | messages | seconds, median (min-max) | messages/s | CPU s |", "|---|---|---|---|---|---|"]
    for accounts in (1, 20):
        work = Path(tempfile.mkdtemp(prefix="xfer-bench-fetch-", dir=base))
        server = start_mail_server(work / "server", users=accounts)
        try:
            users = sorted(server.users)
            fill(server, users, args.messages, args.size)
            runs = [
                ("xfer", lambda w: run_xfer(server, users, w, args.connections)),
                ("imaplib", lambda w: run_imaplib(server, users, w)),
                ("mbsync", lambda w: run_mbsync(server, users, w)),
            ]
            for name, run in runs:
                results = []
                for attempt in range(args.runs):
                    scratch = work / f"{name}-{attempt}"
                    scratch.mkdir()
                    result = run(scratch)
                    shutil.rmtree(scratch, ignore_errors=True)
                    if result is None:
                        break
                    results.append(result)
                if not results:
                    rows.append(f"| {accounts} | {name} | - | not installed | | |")
                    continue
                wall, cpu, stored = sorted(results)[len(results) // 2]
                spread = f" ({min(r[0] for r in results):.2f}-{max(r[0] for r in results):.2f})" if len(results) > 1 else ""
                rows.append(f"| {accounts} | {name} | {stored} | {wall:.2f}{spread} | {stored / wall:.0f} | {cpu:.2f} |")
        finally:
            server.stop()
            shutil.rmtree(work, ignore_errors=True)
    print("\n".join(rows))


if __name__ == "__main__":
    main()
