"""Real Postfix (SMTP) + Dovecot (POP3/IMAP) on loopback for mail-client integration tests.

One call of `start_mail_server` gives a private Postfix instance and a private Dovecot
instance that share one Maildir tree: Postfix's `virtual` agent delivers into
`maildir_root/<domain>/<user>/` and Dovecot serves the same Maildirs, so a message sent
over SMTP shows up in POP3 and IMAP a few milliseconds later.

Why the runtime tree is not under pytest's tmp_path: pytest makes /tmp/pytest-of-root
mode 0700, so the unprivileged Postfix/Dovecot processes (postfix, nobody, dovenull)
could not reach it, and Dovecot's unix sockets need short paths (108-byte limit). The
servers therefore run from a short /tmp/xfer-mail-XXXX directory (symlinked as
tmp_path/mail-server while running); on stop the logs (postfix.log, dovecot.log) are
copied to `server.logs_dir` (tmp_path/mail-logs) and the directory is removed.

Nothing in /etc is changed: Postfix is pointed at its config dir with MAIL_CONFIG,
which root may do without `alternate_config_directories`; Dovecot gets a standalone
config with `-c` and never reads /etc/dovecot.
"""

from __future__ import annotations

import atexit
import contextlib
import grp
import os
import pwd
import shutil
import signal
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.common import free_ports, require_binary, require_root, wait_port

HOST = "127.0.0.1"
DOMAIN = "example.test"
POSTFIX = "/usr/sbin/postfix"
DOVECOT = "/usr/sbin/dovecot"

_RUNNING: set[MailServer] = set()
_RUNNING_LOCK = threading.Lock()


def _ids() -> tuple[int, int]:
    """uid/gid that own the Maildirs: Postfix `virtual` and Dovecot both act as this user."""
    return pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid


@dataclass(eq=False)
class MailServer:
    """A running Postfix + Dovecot pair; `users` maps local part -> password.

    Logins work with the full address (`server.address("user1")`) or the bare local
    part (Dovecot's auth_default_realm adds the domain).
    """

    host: str
    smtp_port: int
    submission_port: int | None
    smtps_port: int | None
    pop3_port: int
    imap_port: int
    pop3s_port: int | None
    imaps_port: int | None
    ca_pem: Path | None
    domain: str
    users: dict[str, str]
    maildir_root: Path
    root: Path
    logs_dir: Path
    _link: Path | None = field(repr=False)
    _postfix_dir: Path = field(repr=False)
    _queue_dir: Path = field(repr=False)
    _dovecot_conf: Path = field(repr=False)
    _dovecot_base: Path = field(repr=False)
    _stopped: bool = field(default=False, repr=False)

    # -- addresses, users, mailboxes ---------------------------------------------------

    def address(self, user: str) -> str:
        """The full e-mail address of a user given by local part (or already full)."""
        return user if "@" in user else f"{user}@{self.domain}"

    def add_user(self, user: str, password: str) -> None:
        """Create a mailbox on the running servers (Postfix map + Dovecot passwd-file)."""
        local = user.split("@", 1)[0]
        self.users[local] = password
        _write_user_files(self.root, self.domain, self.users)
        _make_maildir(self.maildir(local))
        # texthash maps are read once per process: make the running daemons re-read them.
        _run_postfix(self._postfix_dir, "reload")

    def maildir(self, user: str) -> Path:
        """The Maildir that Postfix delivers into and Dovecot serves for this user."""
        return self.maildir_root / self.domain / user.split("@", 1)[0]

    def message_count(self, user: str) -> int:
        """Messages delivered to a user's INBOX (new + cur), read straight from disk."""
        box = self.maildir(user)
        return sum(len(os.listdir(box / sub)) for sub in ("new", "cur") if (box / sub).is_dir())

    def wait_for_messages(self, user: str, count: int, timeout: float = 20.0) -> None:
        """Block until a user's INBOX holds >= count messages: SMTP acceptance is
        asynchronous, delivery to the Maildir follows some milliseconds later."""
        deadline = time.monotonic() + timeout
        while self.message_count(user) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.address(user)} has {self.message_count(user)} of {count} "
                    f"messages after {timeout}s\n{self.log_tail()}"
                )
            time.sleep(0.01)

    # -- TLS -----------------------------------------------------------------------------

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts only this server's test CA (tls=True servers)."""
        if self.ca_pem is None:
            raise RuntimeError("server was started without tls=True")
        return ssl.create_default_context(cafile=str(self.ca_pem))

    # -- logs and shutdown ---------------------------------------------------------------

    def log_tail(self, lines: int = 40) -> str:
        """The end of the Postfix and Dovecot logs, for failure messages (Postfix's
        tools say nothing on stderr unless it is a terminal: the log is the truth)."""
        out = []
        for name in ("postfix.log", "dovecot.log"):
            for base in (self.root / "log", self.logs_dir):
                path = base / name
                if path.exists():
                    text = path.read_text(errors="replace").splitlines()[-lines:]
                    out.append(f"--- {path}\n" + "\n".join(text))
                    break
        return "\n".join(out)

    def pids(self) -> list[int]:
        """Live PIDs of both servers (masters and children), for leak checks in tests."""
        masters = [
            pid
            for pid in map(_read_pid, (self._queue_dir / "pid" / "master.pid",
                                       self._dovecot_base / "master.pid"))
            if pid is not None and _alive(pid)
        ]
        return [p for pid in masters for p in (pid, *_descendants(pid)) if _alive(p)]

    def stop(self) -> None:
        """Stop both servers (SIGTERM, then SIGKILL by PID), keep the logs in logs_dir
        and delete the runtime directory. Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        with _RUNNING_LOCK:
            _RUNNING.discard(self)
        try:
            _stop_masters(
                [self._queue_dir / "pid" / "master.pid", self._dovecot_base / "master.pid"]
            )
        finally:
            with contextlib.suppress(OSError):
                shutil.copytree(self.root / "log", self.logs_dir, dirs_exist_ok=True)
            if self._link is not None:
                with contextlib.suppress(OSError):
                    self._link.unlink()
            shutil.rmtree(self.root, ignore_errors=True)


# -- process handling ----------------------------------------------------------------


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int) -> bool:
    """True while pid exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _descendants(pid: int) -> list[int]:
    """All processes below pid (from /proc), so a fallback kill hits the exact tree."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def _wait_gone(pids: list[int], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _postfix_env(config_dir: Path) -> dict[str, str]:
    # MAIL_CONFIG instead of `postfix -c`: postfix-script and its helpers inherit it, and
    # root may use any config dir without alternate_config_directories in /etc.
    return {**os.environ, "MAIL_CONFIG": str(config_dir)}


def _run_postfix(config_dir: Path, command: str, timeout: float = 30.0, prefix: list[str] | None = None) -> None:
    log_dir = config_dir.parent / "log"
    output = _run_daemon_tool(
        [*(prefix or []), POSTFIX, "-c", str(config_dir), command],
        log_dir / "commands.log",
        timeout,
        env=_postfix_env(config_dir),
    )
    if output is not None:
        log = log_dir / "postfix.log"
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"postfix {command} failed: {output}\n{tail}")


def _run_daemon_tool(
    argv: list[str], out_file: Path, timeout: float, env: dict[str, str] | None = None
) -> str | None:
    """Run a command that forks a daemon; None on success, else its output.

    Output goes to a file, not a pipe: the daemons inherit stdout/stderr and keep them
    open, so capture_output would wait for EOF until the server stops."""
    with open(out_file, "a+") as out:
        start = out.tell()
        rc = subprocess.run(
            argv, env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=timeout
        ).returncode
        if rc == 0:
            return None
        out.seek(start)
        return f"{' '.join(argv)} exited {rc}: {out.read()}"


def _stop_masters(pid_files: list[Path], grace: float = 2.0) -> None:
    """SIGTERM each master (what `postfix stop` / `dovecot stop` do), wait up to `grace`
    seconds for the whole process trees, then SIGKILL what is left, by PID.

    Both servers stop in parallel. The grace is short on purpose: Dovecot login
    processes that were just spawned can hang 5 s on a stats-writer handshake while the
    master shuts down, and a test server has nothing worth a clean shutdown."""
    masters = [pid for pid in map(_read_pid, pid_files) if pid is not None and _alive(pid)]
    everyone = [p for pid in masters for p in (pid, *_descendants(pid))]
    for pid in masters:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if _wait_gone(everyone, grace):
        return
    for pid in masters:
        everyone += [p for p in _descendants(pid) if p not in everyone]
    left = [p for p in everyone if _alive(p)]
    for p in left:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)
    if not _wait_gone(left, 5.0):
        raise RuntimeError(f"mail server processes survived SIGKILL: {left}")


@atexit.register
def _stop_all() -> None:
    """Last line of defence: stop servers a crashed or interrupted session left running."""
    with _RUNNING_LOCK:
        servers = list(_RUNNING)
    for server in servers:
        with contextlib.suppress(Exception):
            server.stop()


# -- configuration -------------------------------------------------------------------


def _backdate(*paths: Path) -> None:
    """Set mtimes 60 s into the past. Postfix re-reads a config or texthash file every
    300 ms until its mtime is over a second old ("file is being edited"), which cost
    ~2 s per start with freshly written files."""
    past = time.time() - 60
    for path in paths:
        os.utime(path, (past, past))


def _make_maildir(path: Path) -> None:
    uid, gid = _ids()
    for d, mode in ((path.parent, 0o755), (path, 0o700)):
        d.mkdir(mode=mode, exist_ok=True)
        os.chown(d, uid, gid)
    for sub in ("new", "cur", "tmp"):
        (path / sub).mkdir(mode=0o700, exist_ok=True)
        os.chown(path / sub, uid, gid)


# Postfix's queue tree as /etc/postfix/postfix-files describes it: (name, owner, group,
# mode). Made here, with a `quick-start` marker, so `postfix start` skips its integrity
# scripts (post-install, check-fatal, check-warn), which take 1-2 s per start.
_QUEUE_TREE = [
    ("pid", "root", "root", 0o755),
    ("maildrop", "postfix", "postdrop", 0o730),
    ("public", "postfix", "postdrop", 0o710),
    *(
        (sub, "postfix", "root", 0o700)
        for sub in (
            "active", "bounce", "corrupt", "defer", "deferred", "flush",
            "hold", "incoming", "private", "saved", "trace",
        )
    ),
]


def _make_queue_tree(queue: Path) -> None:
    for sub, owner, group, mode in _QUEUE_TREE:
        path = queue / sub
        path.mkdir()
        shutil.chown(path, owner, group)
        path.chmod(mode)
    (queue / "quick-start").touch()


def _write_user_files(root: Path, domain: str, users: dict[str, str]) -> None:
    """Postfix virtual_mailbox_maps (trailing / = Maildir) and Dovecot's passwd-file."""
    vmail = "".join(f"{u}@{domain} {domain}/{u}/\n" for u in users)
    passwd = "".join(f"{u}@{domain}:{{PLAIN}}{p}::::::\n" for u, p in users.items())
    (root / "postfix" / "vmailbox").write_text(vmail)
    _backdate(root / "postfix" / "vmailbox")
    passwd_file = root / "dovecot-passwd"
    passwd_file.write_text(passwd)
    passwd_file.chmod(0o644)  # read by the dovecot auth worker (user dovecot)


def _make_certs(tls_dir: Path) -> tuple[Path, Path, Path]:
    """A trustme CA and a server cert for 127.0.0.1/localhost: (ca.pem, cert chain, key)."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost", f"mail.{DOMAIN}")
    tls_dir.mkdir(mode=0o755)
    ca_pem, chain, key = tls_dir / "ca.pem", tls_dir / "server.pem", tls_dir / "server.key"
    ca.cert_pem.write_to_path(str(ca_pem))
    chain.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key))
    key.chmod(0o600)  # both servers read it as root before dropping privileges
    return ca_pem, chain, key


def _postfix_main_cf(
    root: Path, name: str, uid: int, gid: int, tls: tuple[Path, Path] | None, sasl: Path | None, host: str
) -> str:
    log_dir = root / "log"
    lines = [
        "compatibility_level = 3.6",
        f"queue_directory = {root / 'queue'}",
        f"data_directory = {root / 'data'}",
        f"syslog_name = {name}",
        f"maillog_file = {log_dir / 'postfix.log'}",
        f"maillog_file_prefixes = /var, /dev/stdout, {log_dir}",
        "mail_owner = postfix",
        "setgid_group = postdrop",
        f"myhostname = mail.{DOMAIN}",
        f"mydomain = {DOMAIN}",
        "myorigin = $myhostname",
        "mydestination =",
        f"inet_interfaces = {host}",
        "inet_protocols = ipv4",
        "mynetworks = 127.0.0.0/8",
        "relayhost =",
        "alias_maps =",
        "alias_database =",
        "local_recipient_maps =",
        "biff = no",
        "append_dot_mydomain = no",
        "smtpd_banner = $myhostname ESMTP xfer-test",
        # No reverse DNS for 127.0.0.1: a slow resolver must not slow the tests.
        "smtpd_peername_lookup = no",
        # Test servers answer errors at once and tolerate many (fault and load tests).
        "smtpd_error_sleep_time = 0",
        "smtpd_soft_error_limit = 100",
        "smtpd_hard_error_limit = 1000",
        "default_process_limit = 100",
        # Retry a temporarily failed delivery in seconds, not the default 5-70 minutes.
        "queue_run_delay = 2s",
        "minimal_backoff_time = 2s",
        "maximal_backoff_time = 10s",
        f"virtual_mailbox_domains = {DOMAIN}",
        f"virtual_mailbox_base = {root / 'mail'}",
        f"virtual_mailbox_maps = texthash:{root / 'postfix' / 'vmailbox'}",
        f"virtual_uid_maps = static:{uid}",
        f"virtual_gid_maps = static:{gid}",
        "virtual_minimum_uid = 100",
        # virtual_mailbox_limit < message_size_limit makes delivery stall: keep it 0.
        "message_size_limit = 52428800",
        "virtual_mailbox_limit = 0",
        "mailbox_size_limit = 0",
        "smtpd_tls_security_level = none",
        "smtpd_sasl_auth_enable = no",
    ]
    if tls is not None:
        chain, key = tls
        lines += [
            f"smtpd_tls_cert_file = {chain}",
            f"smtpd_tls_key_file = {key}",
            "smtpd_tls_loglevel = 0",
        ]
    if sasl is not None:
        lines += [
            "smtpd_sasl_type = dovecot",
            f"smtpd_sasl_path = {sasl}",
            "smtpd_sasl_security_options = noanonymous",
            "broken_sasl_auth_clients = no",
        ]
    return "\n".join(lines) + "\n"


_MASTER_SERVICES = """\
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       n       -       -       lmtp
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def _postfix_master_cf(
    name: str, smtp_port: int, submission_port: int | None, smtps_port: int | None, tls: bool, host: str
) -> str:
    """smtpd on `host` (127.0.0.1) only, no chroot. The plain port never offers STARTTLS (so a
    client's opportunistic STARTTLS cannot fail on the test CA); submission needs AUTH
    (and STARTTLS when tls); smtps is implicit TLS + AUTH."""
    auth_only = [
        "  -o smtpd_sasl_auth_enable=yes",
        "  -o smtpd_client_restrictions=permit_sasl_authenticated,reject",
        "  -o smtpd_relay_restrictions=permit_sasl_authenticated,reject",
    ]
    out = [
        f"{host}:{smtp_port} inet n - n - - smtpd",
    ]
    if submission_port is not None:
        out.append(f"{host}:{submission_port} inet n - n - - smtpd")
        out.append(f"  -o syslog_name={name}/submission")
        if tls:
            out.append("  -o smtpd_tls_security_level=encrypt")
            out.append("  -o smtpd_tls_auth_only=yes")
        out += auth_only
    if smtps_port is not None:
        out.append(f"{host}:{smtps_port} inet n - n - - smtpd")
        out.append(f"  -o syslog_name={name}/smtps")
        out.append("  -o smtpd_tls_wrappermode=yes")
        out.append("  -o smtpd_tls_security_level=encrypt")
        out += auth_only
    return "\n".join(out) + "\n" + _MASTER_SERVICES


def _dovecot_conf(
    root: Path,
    name: str,
    uid: int,
    gid: int,
    ports: dict[str, int],
    tls: tuple[Path, Path] | None,
    host: str,
) -> str:
    """A standalone config (no /etc/dovecot includes): passwd-file passdb, static userdb
    as nobody, Maildirs shared with Postfix, and an auth socket for Postfix SASL."""
    ssl_lines = "ssl = no\n"
    if tls is not None:
        chain, key = tls
        ssl_lines = f"ssl = yes\nssl_cert = <{chain}\nssl_key = <{key}\n"
    return f"""\
protocols = imap pop3
listen = {host}
base_dir = {root / 'dovecot'}
state_dir = {root / 'dovecot-state'}
instance_name = {name}
log_path = {root / 'log' / 'dovecot.log'}
default_internal_user = dovecot
default_internal_group = dovecot
default_login_user = dovenull
{ssl_lines}disable_plaintext_auth = no
auth_mechanisms = plain login
# Answer failed logins at once (default 2 s), for auth-failure and load tests.
auth_failure_delay = 0
auth_default_realm = {DOMAIN}
login_trusted_networks = 127.0.0.0/8
mail_location = maildir:{root / 'mail'}/%d/%n
pop3_uidl_format = %08Xu%08Xv
default_process_limit = 500
default_client_limit = 2000

passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root / 'dovecot-passwd'}
}}
userdb {{
  driver = static
  args = uid={uid} gid={gid} home={root / 'mail'}/%d/%n
}}

protocol imap {{
  mail_max_userip_connections = 1000
}}
protocol pop3 {{
  mail_max_userip_connections = 1000
}}

service imap-login {{
  inet_listener imap {{
    port = {ports['imap']}
  }}
  inet_listener imaps {{
    port = {ports.get('imaps', 0)}
    ssl = yes
  }}
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {ports['pop3']}
  }}
  inet_listener pop3s {{
    port = {ports.get('pop3s', 0)}
    ssl = yes
  }}
}}
# No auth penalty (2, 4, 8... s per failed login from one IP): all clients are 127.0.0.1.
service anvil {{
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
service auth {{
  unix_listener auth-postfix {{
    mode = 0666
  }}
}}
"""


# -- start -----------------------------------------------------------------------------


def start_mail_server(
    tmp_path: Path,
    users: dict[str, str] | int = 3,
    tls: bool = False,
    auth: bool = True,
    host: str = HOST,
    netns: str | None = None,
) -> MailServer:
    """Start Postfix + Dovecot on free loopback ports; return once every port answers.

    users: {local part or address: password}, or N for user1..userN with passwords
    secret1..secretN. tls=True adds a trustme CA (`ca_pem`, `ssl_context()`), STARTTLS
    on submission, smtps, imaps, pop3s, and STARTTLS on imap/pop3. auth=True (default)
    adds the submission port with SMTP AUTH through Dovecot SASL (and smtps when tls).
    The plain smtp_port never offers STARTTLS or AUTH and relays for 127.0.0.0/8.
    host/netns: listen on `host` instead, inside the network namespace `netns` (made by
    the test), for a server that is not on loopback.
    """
    require_root("Postfix/Dovecot fixtures")
    require_binary(POSTFIX, "postfix")
    require_binary(DOVECOT, "dovecot-core")
    require_binary("/usr/lib/dovecot/pop3", "dovecot-pop3d")
    require_binary("/usr/lib/dovecot/imap", "dovecot-imapd")
    if isinstance(users, int):
        user_map = {f"user{i}": f"secret{i}" for i in range(1, users + 1)}
    else:
        user_map = {}
        for user, password in users.items():
            local, _, domain = user.partition("@")
            if domain and domain != DOMAIN:
                raise ValueError(f"{user}: the test servers serve only @{DOMAIN}")
            user_map[local] = password
    # free_ports() can race with another process taking the port before the server
    # binds it: retry with fresh ports when that is what went wrong.
    for attempt in range(3):
        try:
            return _start_once(tmp_path, user_map, tls, auth, host, netns)
        except _PortTaken:
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


class _PortTaken(RuntimeError):
    pass


def _start_once(
    tmp_path: Path, user_map: dict[str, str], tls: bool, auth: bool, host: str, netns: str | None
) -> MailServer:
    uid, gid = _ids()
    root = Path(tempfile.mkdtemp(prefix="xfer-mail-", dir="/tmp"))
    try:
        root.chmod(0o755)
        name = f"xfer-{root.name.rsplit('-', 1)[-1]}"
        for sub in ("postfix", "queue", "log", "dovecot", "dovecot-state"):
            (root / sub).mkdir(mode=0o755)
        _make_queue_tree(root / "queue")
        data = root / "data"
        data.mkdir(mode=0o700)
        shutil.chown(data, "postfix", "postfix")
        mail = root / "mail"
        mail.mkdir(mode=0o755)
        os.chown(mail, uid, gid)
        for local in user_map:
            _make_maildir(mail / DOMAIN / local)
        _write_user_files(root, DOMAIN, user_map)

        certs = _make_certs(root / "tls") if tls else None
        ca_pem, cert_pair = (certs[0], (certs[1], certs[2])) if certs else (None, None)
        sasl_socket = root / "dovecot" / "auth-postfix" if auth else None

        names = ["smtp", "pop3", "imap"] + (["submission"] if auth else []) + (["pop3s", "imaps"] if tls else [])
        names += ["smtps"] if tls and auth else []
        ports = dict(zip(names, free_ports(len(names))))

        postfix_dir = root / "postfix"
        (postfix_dir / "main.cf").write_text(
            _postfix_main_cf(root, name, uid, gid, cert_pair, sasl_socket, host)
        )
        (postfix_dir / "master.cf").write_text(
            _postfix_master_cf(
                name, ports["smtp"], ports.get("submission"), ports.get("smtps"), tls, host
            )
        )
        _backdate(postfix_dir / "main.cf", postfix_dir / "master.cf")
        dovecot_conf = root / "dovecot.conf"
        dovecot_conf.write_text(_dovecot_conf(root, name, uid, gid, ports, cert_pair, host))

        tmp_path.mkdir(parents=True, exist_ok=True)
        link, logs_dir = _unique_names(tmp_path)
        try:
            link.symlink_to(root)
        except OSError:
            link = None
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise

    server = MailServer(
        host=host,
        smtp_port=ports["smtp"],
        submission_port=ports.get("submission"),
        smtps_port=ports.get("smtps"),
        pop3_port=ports["pop3"],
        imap_port=ports["imap"],
        pop3s_port=ports.get("pop3s"),
        imaps_port=ports.get("imaps"),
        ca_pem=ca_pem,
        domain=DOMAIN,
        users=user_map,
        maildir_root=mail,
        root=root,
        logs_dir=logs_dir,
        _link=link,
        _postfix_dir=postfix_dir,
        _queue_dir=root / "queue",
        _dovecot_conf=dovecot_conf,
        _dovecot_base=root / "dovecot",
    )
    with _RUNNING_LOCK:
        _RUNNING.add(server)
    try:
        # Dovecot first: Postfix's SASL socket comes from it.
        in_netns = ["ip", "netns", "exec", netns] if netns else []
        failed = _run_daemon_tool(
            [*in_netns, DOVECOT, "-c", str(dovecot_conf)], root / "log" / "commands.log", 30
        )
        if failed:
            raise RuntimeError(failed)
        _run_postfix(postfix_dir, "start", prefix=in_netns)
        for port in ports.values():
            wait_port(port, timeout=15, host=host)
    except BaseException as exc:
        tail = server.log_tail()
        server.stop()
        if not isinstance(exc, Exception):
            raise
        message = f"mail server did not start: {exc}\n{tail}"
        if "in use" in message:
            raise _PortTaken(message) from exc
        raise RuntimeError(message) from exc
    return server


def _unique_names(tmp_path: Path) -> tuple[Path, Path]:
    """tmp_path/mail-server + tmp_path/mail-logs, or -2, -3... for more servers per test."""
    for n in range(1, 1000):
        suffix = "" if n == 1 else f"-{n}"
        link, logs = tmp_path / f"mail-server{suffix}", tmp_path / f"mail-logs{suffix}"
        if not link.is_symlink() and not logs.exists():
            return link, logs
    raise RuntimeError(f"too many mail servers in {tmp_path}")


@pytest.fixture
def mail_server(tmp_path: Path) -> Iterator[MailServer]:
    """Plain Postfix + Dovecot with users user1..user3 (passwords secret1..3)."""
    server = start_mail_server(tmp_path)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def mail_server_tls(tmp_path: Path) -> Iterator[MailServer]:
    """As mail_server, plus a test CA (server.ca_pem), STARTTLS, smtps, imaps, pop3s."""
    server = start_mail_server(tmp_path, tls=True)
    try:
        yield server
    finally:
        server.stop()
