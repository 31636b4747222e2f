"""A real INN2 news server on loopback for NNTP integration tests.

innd is the feeder: articles go in with pipelined streaming TAKETHIS (thousands per
second; POST through nnrpd manages ~800/s). Clients read from a standalone ``nnrpd -D``:
on innd's own port localhost counts as a feeding peer, not as a reader. Both run as user
``news`` from a private copy of /etc/news that every INN program finds through the
``INNCONF`` environment variable.

The tree lives in its own ``xfer-inn-*`` directory on /dev/shm (else /tmp), not in
pytest's ``tmp_path``: ``news`` cannot traverse pytest's 0700 ``/tmp/pytest-of-root``,
innd's control socket must stay under the 108-byte Unix socket path limit, and tradspool
creates one file per article, which costs 5-9 s per 10,000 on this ext4 disk under load
against 0.6 s on tmpfs. ``stop()`` copies the logs into ``tmp_path`` and deletes the tree.
"""

from __future__ import annotations

import atexit
import ctypes
import email.utils
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pytest
import trustme

from tests.servers.common import free_port, require_binary, require_root, wait_port

INN_BIN = Path("/usr/lib/news/bin")
INN_ETC = Path("/etc/news")
HOST = "127.0.0.1"
PATH_HOST = "xfer-inn.localdomain"  # must not appear in test articles' Path (loop check)

# Groups every INN needs; tests create their own with create_group().
_BASE_GROUPS = {
    "control": "Various control messages (no posting)",
    "control.cancel": "Cancel messages (no posting)",
    "junk": "Unfiled articles (no posting)",
}


class PostError(RuntimeError):
    """innd refused articles; ``refused`` maps Message-ID to innd's reason."""

    def __init__(self, refused: dict[str, str]) -> None:
        self.refused = refused
        sample = "; ".join(f"{mid}: {why}" for mid, why in list(refused.items())[:5])
        super().__init__(f"innd refused {len(refused)} article(s): {sample}")


@dataclass
class NewsServer:
    """A running innd + nnrpd pair. ``stop()`` is idempotent and ends them by PID."""

    host: str
    reader_port: int  # nnrpd: what clients use; localhost reads and posts without login
    feed_port: int  # innd: streaming feed (MODE STREAM / TAKETHIS)
    root: Path  # the private INN tree: etc, db, spool, log, run
    auth_port: int | None = None  # a second nnrpd demanding AUTHINFO (start with users=)
    users: dict[str, str] = field(default_factory=dict)
    tls_port: int | None = None  # nnrpd -S: implicit TLS (start with tls=True)
    tls_auth_port: int | None = None  # the same, demanding AUTHINFO (tls=True and users=)
    ca_pem: bytes | None = None  # the CA that signed the TLS certificate (PEM)
    log_dir: Path | None = None  # stop() copies the logs here
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def env(self) -> dict[str, str]:
        """Environment that points INN programs at this server's inn.conf."""
        return {**os.environ, "INNCONF": str(self.root / "etc" / "inn.conf")}

    def run_tool(self, *args: str, timeout: float = 30.0) -> str:
        """Run an INN program (ctlinnd, sm, tdx-util...) as ``news``; its stdout.

        As user news because several of them (rnews...) silently do nothing as root.
        """
        if f"pathdb: {self.root / 'db'}\n" not in (self.root / "etc" / "inn.conf").read_text():
            raise RuntimeError("inn.conf not relocated yet: refusing to touch the system INN")
        done = subprocess.run(
            [str(INN_BIN / args[0]), *args[1:]], env=self.env, cwd=self.root,
            user="news", group="news", extra_groups=[], capture_output=True, timeout=timeout,
        )
        if done.returncode != 0:
            output = (done.stdout + done.stderr).decode(errors="replace")
            raise RuntimeError(f"{' '.join(args)} exited {done.returncode}: {output}")
        return done.stdout.decode(errors="replace")

    def create_group(self, name: str, description: str = "", flag: str = "y") -> None:
        """Create a group in the running innd (flag ``y`` open, ``n`` no posting,
        ``m`` moderated); the description shows in LIST NEWSGROUPS."""
        self.run_tool("ctlinnd", "-s", "newgroup", name, flag, "xfer-tests")
        if description:
            with open(self.root / "db" / "newsgroups", "a", encoding="utf-8") as out:
                out.write(f"{name}\t{description}\n")

    def post_articles(self, articles: Iterable[bytes], timeout: float = 120.0) -> list[str]:
        """Feed articles to innd with pipelined TAKETHIS; return once nnrpd shows them.

        Returns the Message-IDs in order. If innd refused any (duplicate, unknown group,
        bad header...) raises PostError after the accepted ones became visible.
        """
        batch: list[tuple[str, bytes, list[str]]] = []
        for article in articles:
            headers = _headers(article)
            mid = headers.get("message-id")
            if not mid:
                raise ValueError("article without a Message-ID header")
            groups = [g.strip() for g in headers.get("newsgroups", "").split(",") if g.strip()]
            batch.append((mid, _wire(article), groups))
        if not batch:
            return []
        before = self._group_counts(sorted({g for _, _, groups in batch for g in groups}))
        answers = self._takethis([(mid, wire) for mid, wire, _ in batch], timeout)
        want: Counter[str] = Counter()
        refused: dict[str, str] = {}
        for (mid, _, groups), answer in zip(batch, answers):
            if answer is None:
                want.update(g for g in groups if before.get(g) is not None)
            else:
                refused[mid] = answer
        self._wait_visible({g: (before[g] or 0) + n for g, n in want.items()}, timeout)
        if refused:
            raise PostError(self._reasons(refused))
        return [mid for mid, _, _ in batch]

    def stop(self, graceful: bool = True) -> None:
        """Stop the daemons, copy the logs to log_dir, delete the tree.

        graceful: ``ctlinnd shutdown`` (innd takes ~1 s to exit), SIGKILL if that fails;
        SIGTERM is no use, innd acts on it only when its 300 s idle timer fires.
        Not graceful: ``ctlinnd flush`` for the logs, then SIGKILL (~0.1 s with the log
        copy and deletion); nothing a test needs is lost, the tree goes anyway.
        """
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        innd, readers = (self._procs[0], self._procs[1:]) if self._procs else (None, [])
        if innd is not None and innd.poll() is None and not graceful:
            self._flush()  # keep the refusals in the copied news log
        for proc in readers:
            _kill_group(proc, signal.SIGTERM if graceful else signal.SIGKILL)
        if innd is not None and innd.poll() is None:
            try:
                if not graceful:
                    raise RuntimeError("not graceful")
                self.run_tool("ctlinnd", "-s", "-t", "10", "shutdown", "xfer tests done",
                              timeout=15)
                if not _wait_exit(innd, 10):
                    raise RuntimeError("innd ignored ctlinnd shutdown")
            except (RuntimeError, subprocess.TimeoutExpired, OSError):
                _kill_group(innd, signal.SIGKILL)
        for proc in self._procs:
            _reap(proc)
        if self.log_dir is not None and (self.root / "log").is_dir():
            shutil.copytree(self.root / "log", self.log_dir, dirs_exist_ok=True)
        shutil.rmtree(self.root, ignore_errors=True)

    # -- internals -------------------------------------------------------------------

    def _takethis(self, batch: list[tuple[str, bytes]], timeout: float) -> list[str | None]:
        """Send TAKETHIS from a writer thread while this one reads innd's in-order
        answers (no deadlock on full socket buffers): None for 239, else the line."""
        with socket.create_connection((self.host, self.feed_port), timeout=timeout) as sock:
            reader = sock.makefile("rb")
            _expect(reader.readline(), b"200", "innd greeting")
            sock.sendall(b"MODE STREAM\r\n")
            _expect(reader.readline(), b"203", "MODE STREAM")
            failure: list[OSError] = []

            def send() -> None:
                buf = bytearray()
                try:
                    for mid, wire in batch:
                        buf += b"TAKETHIS " + mid.encode() + b"\r\n" + wire
                        if len(buf) >= 1 << 18:
                            sock.sendall(buf)
                            buf.clear()
                    sock.sendall(buf)
                except OSError as exc:  # innd hung up; the reading side reports it
                    failure.append(exc)

            writer = threading.Thread(target=send, name="inn-takethis", daemon=True)
            writer.start()
            answers: list[str | None] = []
            for _ in batch:
                line = reader.readline()
                if not line:
                    raise RuntimeError(f"innd closed the feed connection early {failure}")
                text = line.decode(errors="replace").strip()
                answers.append(None if text.startswith("239 ") else text)
            writer.join()
            sock.sendall(b"QUIT\r\n")
        return answers

    def _reasons(self, refused: dict[str, str]) -> dict[str, str]:
        """Replace innd's bare ``439 <id>`` answers by the reason in its news log
        (refusals sit in innd's log buffer, even with -u, until ``ctlinnd flush``)."""
        self._flush()
        log = self.root / "log" / "news"
        if log.exists():
            for line in log.read_text(errors="replace").splitlines():
                match = re.search(r" - \S+ (<[^>]*>) (.*)$", line)
                if match and match.group(1) in refused:
                    refused[match.group(1)] = match.group(2)
        return refused

    def _flush(self) -> None:
        """Write out innd's buffered logs, history and active file; best effort."""
        try:
            self.run_tool("ctlinnd", "-s", "-t", "5", "flush", "", timeout=10)
        except (RuntimeError, subprocess.TimeoutExpired, OSError):
            pass

    def _group_counts(self, groups: Sequence[str]) -> dict[str, int | None]:
        """Article counts nnrpd reports per group (None: no such group). Single-line
        commands only, so nnrpd's delayed-ACK stall on multi-line answers never hits."""
        counts: dict[str, int | None] = {}
        if not groups:
            return counts
        with socket.create_connection((self.host, self.reader_port), timeout=10) as sock:
            reader = sock.makefile("rb")
            _expect(reader.readline(), b"20", "nnrpd greeting")
            for group in groups:
                sock.sendall(f"GROUP {group}\r\n".encode())
                parts = reader.readline().decode(errors="replace").split()
                counts[group] = int(parts[1]) if parts[:1] == ["211"] else None
            sock.sendall(b"QUIT\r\n")
        return counts

    def _wait_visible(self, want: dict[str, int], timeout: float) -> None:
        """Poll GROUP until the overview nnrpd reads counts every stored article."""
        deadline = time.monotonic() + timeout
        while want:
            have = self._group_counts(list(want))
            if all((have[g] or 0) >= n for g, n in want.items()):
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"articles not visible to readers: want {want}, have {have}")
            time.sleep(0.02)


def make_article(
    group: str,
    subject: str,
    body: str,
    *,
    message_id: str | None = None,
    references: Sequence[str] = (),
    from_: str = "Tester <t@example.com>",
    date: datetime | str | None = None,
    headers: dict[str, str] | None = None,
) -> bytes:
    """An article innd takes from a peer (it insists on Path and a parseable Date).

    ``group`` may be comma-separated to crosspost; ``message_id`` defaults to a fresh
    ``<hex@xfer.test>`` (read it back with message_id_of); ``date`` defaults to now, and
    any age is accepted (artcutoff 0); ``headers`` adds or overrides header fields.
    """
    if date is None:
        date = datetime.now(timezone.utc)
    if isinstance(date, datetime):
        date = email.utils.format_datetime(
            date if date.tzinfo else date.replace(tzinfo=timezone.utc)
        )
    fields = {
        "Path": "xfer-test!not-for-mail",
        "From": from_,
        "Newsgroups": group,
        "Subject": subject,
        "Date": date,
        "Message-ID": message_id or f"<{uuid.uuid4().hex}@xfer.test>",
    }
    if references:
        fields["References"] = " ".join(references)
    fields.update(headers or {})
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    text = body.replace("\r\n", "\n").replace("\n", "\r\n")
    if text and not text.endswith("\r\n"):
        text += "\r\n"
    return (head + "\r\n" + text).encode("utf-8")


def message_id_of(article: bytes) -> str:
    """The Message-ID header of an article."""
    return _headers(article)["message-id"]


def _headers(article: bytes) -> dict[str, str]:
    """Lower-cased header names to unfolded values (first occurrence wins)."""
    head = article.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0].decode("utf-8", "replace")
    out: dict[str, str] = {}
    for name, value in re.findall(r"^([^\s:]+):[ \t]*(.*(?:\n[ \t].*)*)", head, re.M):
        out.setdefault(name.lower(), re.sub(r"\n[ \t]+", " ", value).strip())
    return out


def _wire(article: bytes) -> bytes:
    """NNTP wire form: CRLF lines, leading dots doubled, ``.`` line at the end."""
    lines = article.replace(b"\r\n", b"\n").split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return b"".join((b"." + ln if ln[:1] == b"." else ln) + b"\r\n" for ln in lines) + b".\r\n"


def _expect(line: bytes, prefix: bytes, what: str) -> None:
    if not line.startswith(prefix):
        raise RuntimeError(f"{what}: expected {prefix!r}..., got {line!r}")


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the daemon's process group (nnrpd forks a child per client). Only while
    the leader is unreaped, so the group id cannot belong to anyone else yet."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            pass


def _wait_exit(proc: subprocess.Popen[bytes], timeout: float) -> bool:
    """Wait until the process exits, leaving it unreaped (a zombie keeps its group id)."""
    deadline = time.monotonic() + timeout
    while proc.returncode is None:
        try:
            if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT):
                return True
        except ChildProcessError:  # reaped behind Popen's back
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def _reap(proc: subprocess.Popen[bytes]) -> None:
    """Give the daemon 5 s to exit, then SIGKILL its group (leftover children too)."""
    _wait_exit(proc, 5)
    _kill_group(proc, signal.SIGKILL)
    proc.wait()


# -- start-up -------------------------------------------------------------------------


def _inn_conf(root: Path, feed_port: int) -> str:
    """/etc/news/inn.conf with every path* key moved into root, and test settings
    (and the TLS certificate, when _build_tree made one)."""
    spool = root / "spool"
    etc = root / "etc"
    tls = {"tlscapath": str(etc), "tlscertfile": str(etc / _TLS_CERT), "tlskeyfile": str(etc / _TLS_KEY)}
    overrides = {
        "domain": "localdomain",  # INN refuses to run on a host name without a domain
        "pathhost": PATH_HOST,
        "server": HOST,
        "port": str(feed_port),
        "bindaddress": HOST,
        "nnrpdpostport": str(feed_port),
        "artcutoff": "0",  # else articles with old Date headers are refused
        "nnrpdloadlimit": "0",
        "noreader": "true",  # readers go to the standalone nnrpd
        "readerswhenstopped": "false",
        "pgpverify": "false",
        "ovmethod": "tradindexed",
        "enableoverview": "true",
        "hismethod": "hisv6",
        "maxartsize": "0",
        "localmaxartsize": "0",
        "maxconnections": "0",
        "doinnwatch": "false",
        "status": "0",
        "timer": "0",
        "patharchive": str(spool / "archive"),
        "patharticles": str(spool / "articles"),
        "pathdb": str(root / "db"),
        "pathetc": str(root / "etc"),
        "pathfilter": str(root / "etc" / "filter"),
        "pathhttp": str(root / "http"),
        "pathincoming": str(spool / "incoming"),
        "pathlog": str(root / "log"),
        "pathoutgoing": str(spool / "outgoing"),
        "pathoverview": str(spool / "overview"),
        "pathrun": str(root / "run"),
        "pathspool": str(spool),
        "pathtmp": str(spool / "incoming" / "tmp"),
        **(tls if (etc / _TLS_KEY).exists() else {}),
    }
    lines = []
    for line in (INN_ETC / "inn.conf").read_text().splitlines():
        match = re.match(r"^\s*([a-z0-9]+)\s*:", line)
        key = match.group(1) if match else None
        if key in overrides:
            continue
        if key and key.startswith("path") and key not in ("pathbin", "pathnews", "pathcontrol"):
            raise RuntimeError(f"/etc/news/inn.conf has a path key not relocated: {key}")
        lines.append(line)
    lines += [f"{key}: {value}" for key, value in overrides.items()]
    return "\n".join(lines) + "\n"


_READERS_OPEN = """\
auth "localhost" {
    hosts: "127.0.0.1, localhost, ::1, stdin"
    default: "<localhost>"
}
access "localhost" {
    users: "<localhost>"
    newsgroups: "*"
    access: RPA
}
"""

_READERS_AUTH = """\
auth "users" {
    hosts: "*"
    auth: "ckpasswd -f %s"
}
access "users" {
    users: "*"
    newsgroups: "*"
    access: RPA
}
"""


_TLS_CERT, _TLS_KEY = "xfer-cert.pem", "xfer-key.pem"


def _make_certificate(etc: Path) -> bytes:
    """A CA and a server certificate for 127.0.0.1 and localhost (trustme); returns
    the CA's PEM. The key is for user news only (nnrpd reads it after dropping root)."""
    ca = trustme.CA()
    cert = ca.issue_cert(HOST, "localhost")
    (etc / _TLS_CERT).write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    key = etc / _TLS_KEY
    key.write_bytes(cert.private_key_pem.bytes())
    os.chmod(key, 0o600)
    return ca.cert_pem.bytes()


def _crypt(password: str) -> str:
    """A crypt(3) SHA-256 hash, the format ``ckpasswd -f`` reads."""
    done = subprocess.run(["openssl", "passwd", "-5", "-stdin"], input=password.encode(),
                          capture_output=True, check=True)
    return done.stdout.decode().strip()


def _build_tree(root: Path, users: dict[str, str], tls: bool = False) -> bytes | None:
    """The private INN tree; returns the CA's PEM when `tls`."""
    shutil.copytree(INN_ETC, root / "etc", symlinks=True)
    spool = root / "spool"
    for sub in ("db", "run", "log", "http"):
        (root / sub).mkdir()
    for sub in ("articles", "overview", "incoming/tmp", "outgoing", "archive", "innfeed"):
        (spool / sub).mkdir(parents=True)
    etc = root / "etc"
    (etc / "inn.conf").write_text(_inn_conf(root, 0))  # the port comes with each launch
    # No outgoing feeds, so innd forks no channel programs (controlchan...).
    (etc / "newsfeeds").write_text("ME:*::\n")
    (etc / "incoming.conf").write_text(
        'streaming: true\nmax-connections: 0\npeer ME {\n  hostname: "localhost, 127.0.0.1"\n}\n'
    )
    (etc / "storage.conf").write_text("method tradspool {\n    newsgroups: *\n    class: 0\n}\n")
    (etc / "readers.conf").write_text(_READERS_OPEN)
    if users:
        passwd = etc / "passwd.xfer"
        passwd.write_text("".join(f"{u}:{_crypt(p)}\n" for u, p in users.items()))
        (etc / "readers-auth.conf").write_text(_READERS_AUTH % passwd)
    db = root / "db"
    (db / "active").write_text("".join(f"{g} 0000000000 0000000001 n\n" for g in _BASE_GROUPS))
    (db / "active.times").write_text("")
    (db / "newsgroups").write_text("".join(f"{g}\t{d}\n" for g, d in _BASE_GROUPS.items()))
    (db / "history").write_text("")
    ca_pem = _make_certificate(etc) if tls else None
    os.chmod(root, 0o755)
    subprocess.run(["chown", "-R", "news:news", str(root)], check=True)
    return ca_pem


def _base_dir() -> str:
    """Where server trees go: $XFER_INN_DIR, else tmpfs /dev/shm, else /tmp."""
    override = os.environ.get("XFER_INN_DIR")
    if override:
        return override
    if os.path.isdir("/dev/shm") and os.access("/dev/shm", os.W_OK | os.X_OK):
        return "/dev/shm"
    return "/tmp"


def _sweep_stale(base: str, min_age: float = 600.0) -> None:
    """Delete trees left by test processes killed outright (tmpfs is memory): older
    than min_age and their innd gone."""
    for tree in Path(base).glob("xfer-inn-*"):
        try:
            if time.time() - tree.stat().st_mtime < min_age:
                continue
            os.kill(int((tree / "run" / "innd.pid").read_text().split()[0]), 0)
        except ProcessLookupError:
            shutil.rmtree(tree, ignore_errors=True)
        except (OSError, ValueError, IndexError):
            pass  # no pid file yet or not ours to judge; leave it


def _log_tail(root: Path) -> str:
    parts = []
    for path in sorted((root / "log").glob("*")):
        if path.is_file() and path.stat().st_size:
            parts.append(f"--- {path.name}\n" + path.read_text(errors="replace")[-2000:])
    return "\n".join(parts)


class _EarlyExit(RuntimeError):
    """A daemon died while starting, most often because its port was taken meanwhile."""


def _unused_ports(count: int) -> list[int]:
    """Distinct bindable loopback ports from below the kernel's ephemeral range.

    free_port() draws from the ephemeral range, where every bind(0) and outgoing
    connection on this busy shared machine competes: about 1 start in 16 lost its port
    between free_port() and innd's bind. Below the range only explicit binds compete.
    """
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as ranges:
            low = int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        low = 0
    ports: list[int] = []
    while len(ports) < count:
        port = random.randrange(10000, low) if low > 12000 else free_port()
        if port in ports:
            continue
        with socket.socket() as probe:
            try:
                probe.bind((HOST, port))
            except OSError:
                continue
        ports.append(port)
    return ports


def _die_with_parent() -> None:
    """In the child: SIGKILL when the test process dies, even by SIGKILL or an unhandled
    SIGTERM (CI timeouts) that skip atexit. Runs after Popen's switch to user news,
    which would otherwise clear the setting."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _spawn(server: NewsServer, name: str, *args: str) -> None:
    with open(server.root / "log" / f"{name}.stdout", "ab") as out:
        server._procs.append(subprocess.Popen(
            [str(INN_BIN / args[0]), *args[1:]], env=server.env, cwd=server.root,
            user="news", group="news", extra_groups=[], start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent,
        ))


def spawn_auth_reader(server: NewsServer, host: str, port: int, netns: str) -> None:
    """One more nnrpd demanding AUTHINFO (plain, no TLS), on `host:port` inside the
    network namespace `netns` (made by the test): a news server that is not on
    loopback. It stops with the server; wait for it with `wait_port(port, host=host)`."""
    with open(server.root / "log" / f"nnrpd-netns-{port}.stdout", "ab") as out:
        server._procs.append(subprocess.Popen(
            ["ip", "netns", "exec", netns, "setpriv", "--reuid=news", "--regid=news", "--clear-groups",
             str(INN_BIN / "nnrpd"), "-D", "-f", "-n", "-b", host, "-p", str(port), "-c", "readers-auth.conf"],
            env=server.env, cwd=server.root, start_new_session=True,
            stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, preexec_fn=_die_with_parent,
        ))


def _launch(server: NewsServer, timeout: float = 15.0) -> None:
    """Start the daemons on the server's ports and wait until they are ours and ready.

    Ready: ctlinnd gets an answer (innd answers only once its port is bound) and each
    nnrpd wrote ``nnrpd-PORT.pid`` (it does after its bind), so a foreign listener on a
    port can't pass for ours, and a lost port shows as _EarlyExit.
    """
    # innd must come first (stop() relies on it). -f: stay in the foreground;
    # -u: unbuffered news log (accepted lines); -N: no Perl/Python filters.
    _spawn(server, "innd", "innd", "-f", "-u", "-N", "-c", "0")
    readers = [(server.reader_port, "readers.conf", False)]
    if server.auth_port is not None:
        readers.append((server.auth_port, "readers-auth.conf", False))
    if server.tls_port is not None:
        readers.append((server.tls_port, "readers.conf", True))
    if server.tls_auth_port is not None:
        readers.append((server.tls_auth_port, "readers-auth.conf", True))
    for port, conf, tls in readers:
        # -S: TLS from the first byte (nntps). With a certificate in inn.conf the
        # plain ports offer STARTTLS too (our adapter does not use it).
        _spawn(server, f"nnrpd-{port}", "nnrpd", "-D", "-f", "-n", "-b", HOST,
               "-p", str(port), "-c", conf, *(["-S"] if tls else []))
    pid_files = [server.root / "run" / f"nnrpd-{port}.pid" for port, _, _ in readers]
    deadline = time.monotonic() + timeout
    innd_ready = False
    while True:
        dead = [(proc.args[0], proc.returncode) for proc in server._procs
                if proc.poll() is not None]
        if dead:
            raise _EarlyExit(f"exited during start-up: {dead}")
        if not innd_ready:
            try:
                server.run_tool("ctlinnd", "-s", "-t", "2", "mode", timeout=5)
                innd_ready = True
            except RuntimeError:
                pass
        if innd_ready and all(path.exists() for path in pid_files):
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"INN not ready after {timeout}s")
        time.sleep(0.02)
    for port, _, _ in readers:
        wait_port(port, timeout=timeout)


def start_news_server(tmp_path: Path, users: dict[str, str] | None = None, tls: bool = False) -> NewsServer:
    """Start innd + nnrpd on unused loopback ports (~0.1 s). Skips (or fails under
    XFER_REQUIRE_SERVERS=1) without INN or root. stop() copies the logs into tmp_path.

    ``users`` (name -> password) adds a second nnrpd on ``auth_port`` that demands
    AUTHINFO USER/PASS, to test logins and their refusal.
    ``tls`` adds an nnrpd speaking implicit TLS (nntps) on ``tls_port`` (and, with
    ``users``, one demanding AUTHINFO on ``tls_auth_port``), with a certificate for
    127.0.0.1 and localhost signed by a fresh CA whose PEM is ``ca_pem``.
    """
    require_binary(str(INN_BIN / "innd"), "inn2")
    require_binary(str(INN_BIN / "nnrpd"), "inn2")
    require_root("running INN as user news")
    users = dict(users or {})
    _sweep_stale(_base_dir())
    root = Path(tempfile.mkdtemp(prefix="xfer-inn-", dir=_base_dir()))
    server = NewsServer(host=HOST, reader_port=0, feed_port=0, root=root, users=users,
                        log_dir=tmp_path / f"inn-logs-{root.name}")
    atexit.register(server.stop)  # even if the caller never gets to stop()
    try:
        server.ca_pem = _build_tree(root, users, tls)
        # A 100k-entry history table (2 MB) instead of the 10M default (140 MB sparse,
        # touched at random); more articles still work, dbz just probes longer.
        server.run_tool("makedbz", "-i", "-o", "-s", "100000")
        for attempt in range(5):
            # Ports chosen just before the daemons bind them, and retried if lost anyway.
            server.feed_port, server.reader_port, auth_port, tls_port, tls_auth_port = _unused_ports(5)
            server.auth_port = auth_port if users else None
            server.tls_port = tls_port if tls else None
            server.tls_auth_port = tls_auth_port if tls and users else None
            (root / "etc" / "inn.conf").write_text(_inn_conf(root, server.feed_port))
            try:
                _launch(server)
                break
            except _EarlyExit:
                if attempt == 4:
                    raise
                for proc in server._procs:
                    _kill_group(proc, signal.SIGKILL)
                    proc.wait()
                server._procs.clear()
                for leftover in (root / "run").iterdir():
                    leftover.unlink()
    except BaseException as exc:
        tail = _log_tail(root)
        server.stop(graceful=False)
        if isinstance(exc, Exception):
            raise RuntimeError(f"INN did not start: {exc}\n{tail}") from exc
        raise
    return server


@pytest.fixture
def news_server(tmp_path: Path) -> Iterator[NewsServer]:
    """A started INN server, killed after the test whatever its outcome.

    Killed, not shut down: a graceful stop costs ~1 s per test and the tree is
    thrown away anyway.
    """
    server = start_news_server(tmp_path)
    try:
        yield server
    finally:
        server.stop(graceful=False)
