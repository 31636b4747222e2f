"""FTP servers on loopback for the integration tests: pyftpdlib in a thread of this
process (any behaviour can be plugged in: limits, TLS, a hostile filesystem, a count of
open connections) and vsftpd as a real process (a server we did not write, with its own
LIST format and limits).

Both serve an anonymous read-only login and a user with a password who may write.
The roots start empty; the test fills ``server.root``. vsftpd acts as the system user
``xfertest``: a default ACL on its root keeps what the test creates there writable by
that user (files moved in from elsewhere keep their own permissions: call
``server.chown_root()`` then). Both servers give times in UTC.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import shutil
import signal
import struct
import subprocess
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from tests.servers.common import free_port, require_binary, require_root, wait_port

HOST = "127.0.0.1"

# pyftpdlib's user; any password works there, this one needs URL escaping on purpose.
PYFTPD_USER = "xfer"
PYFTPD_PASSWORD = "p@ss:w/rd"

# vsftpd authenticates local users through PAM against /etc/shadow: a real system user.
VSFTPD_USER = "xfertest"
VSFTPD_PASSWORD = "xfer-test-pw-1"
VSFTPD_BINARY = "/usr/sbin/vsftpd"
_PAM_SERVICE = "xfer-vsftpd"
# Our own PAM service so that login depends neither on /etc/shells (the user has no
# login shell) nor on /etc/ftpusers.
# nodelay: pam_unix otherwise waits ~2 s after a wrong password.
_PAM_CONFIG = "auth required pam_unix.so nodelay\naccount required pam_unix.so\n"
_VSFTPD_HOME = Path("/var/lib/xfertest")
_SETUP_LOCK = Path("/run/lock/xfer-vsftpd-setup.lock")
_setup_done = False


class _ConnectionStats:
    """Open control connections, counted by the server itself (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.open = 0
        self.peak = 0
        self.total = 0
        self.refused = 0

    def opened(self) -> None:
        with self._lock:
            self.open += 1
            self.total += 1
            self.peak = max(self.peak, self.open)

    def closed(self) -> None:
        with self._lock:
            self.open -= 1

    def refuse(self) -> None:
        with self._lock:
            self.refused += 1


@dataclass
class FtpServer:
    """A started FTP server. ``user``/``password`` may read and write ``root``;
    anonymous (no password) may read it."""

    host: str
    port: int
    root: Path
    user: str
    password: str
    kind: str  # "pyftpdlib" | "vsftpd"
    ca_pem: Path | None  # the CA to trust when the server was started with tls=True
    log_path: Path | None = None  # vsftpd's protocol log (read it when a test fails)
    _stop: Callable[[], None] = field(default=lambda: None, repr=False)
    _stats: _ConnectionStats | None = field(default=None, repr=False)
    _stopped: bool = field(default=False, repr=False)

    def url(
        self,
        path: str = "/",
        *,
        scheme: str = "ftp",
        with_password: bool = False,
        anonymous: bool = False,
    ) -> str:
        """An URL for this server; user and password are percent-escaped (the
        pyftpdlib password contains '@', ':' and '/' to catch clients that forget)."""
        if anonymous:
            auth = ""
        elif with_password:
            auth = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}@"
        else:
            auth = f"{quote(self.user, safe='')}@"
        if not path.startswith("/"):
            path = "/" + path
        return f"{scheme}://{auth}{self.host}:{self.port}{quote(path, safe='/')}"

    def _counter(self) -> Any:
        """The server-side connection counter; only pyftpdlib runs our handler that
        keeps one (vsftpd is a separate process we cannot instrument)."""
        if self._stats is None:
            raise NotImplementedError(f"{self.kind} does not count connections")
        return self._stats

    @property
    def peak_connections(self) -> int:
        """Most control connections open at the same time since start, counted by the
        server; connections answered 421 (limits) count too while they are open."""
        return self._counter().peak

    @property
    def total_connections(self) -> int:
        """Control connections opened since start (pyftpdlib only): logins a client paid."""
        return self._counter().total

    @property
    def open_connections(self) -> int:
        """Control connections open right now (pyftpdlib only)."""
        return self._counter().open

    @property
    def refused_connections(self) -> int:
        """Connections answered 421 because of max_cons/max_cons_per_ip (pyftpdlib)."""
        return self._counter().refused

    def reset_peak(self) -> None:
        """Forget the peak so far (e.g. after a warm-up phase); pyftpdlib only."""
        stats = self._counter()
        with stats._lock:
            stats.peak = stats.open

    def chown_root(self) -> None:
        """Give everything under root to the login user, so uploads, overwrites and
        deletes work on vsftpd (which acts as that system user) also where the default
        ACL did not apply (files moved in, filesystems without ACLs). No-op on
        pyftpdlib (this process is the server)."""
        if self.kind != "vsftpd":
            return
        entry = pwd.getpwnam(self.user)
        for dirpath, dirnames, filenames in os.walk(self.root):
            os.chown(dirpath, entry.pw_uid, entry.pw_gid)
            for name in dirnames + filenames:
                os.chown(os.path.join(dirpath, name), entry.pw_uid, entry.pw_gid,
                         follow_symlinks=False)

    def stop(self) -> None:
        """Stop the server and close its connections; safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        self._stop()


# --------------------------------------------------------------------------- TLS


def _write_tls_files(directory: Path) -> tuple[Path, Path, Path]:
    """A fresh CA and a server certificate for 127.0.0.1/localhost: (ca, cert, key)."""
    import trustme

    ca = trustme.CA()
    cert = ca.issue_cert(HOST, "localhost")
    ca_pem = directory / "ca.pem"
    cert_pem = directory / "server-cert.pem"
    key_pem = directory / "server-key.pem"
    ca.cert_pem.write_to_path(str(ca_pem))
    cert_pem.write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    cert.private_key_pem.write_to_path(str(key_pem))
    key_pem.chmod(0o600)
    return ca_pem, cert_pem, key_pem


# --------------------------------------------------------------------- pyftpdlib


def start_pyftpdlib(
    root: Path,
    *,
    max_cons: int = 0,
    max_cons_per_ip: int = 0,
    tls: bool = False,
    tls_required: bool = True,
    filesystem: type | None = None,
    user: str = PYFTPD_USER,
    password: str = PYFTPD_PASSWORD,
    anonymous: bool = True,
    passive_ports: range | None = None,
    handler_attrs: dict[str, Any] | None = None,
) -> FtpServer:
    """pyftpdlib's ThreadedFTPServer in a daemon thread on a free port.

    max_cons: at most this many control connections at once (exact, counted by us;
      pyftpdlib's own max_cons also counts its listening and data sockets), the next
      one gets "421 Too many connections".
    max_cons_per_ip: pyftpdlib's per-address limit (everything here is 127.0.0.1).
    tls: explicit FTPS (AUTH TLS) with a trustme certificate, ``ca_pem`` is the CA;
      tls_required makes plain USER and PASV answer 550.
    filesystem: an ``AbstractedFS`` subclass, e.g. one whose listdir returns hostile
      names; it serves both LIST and MLSD.
    handler_attrs: extra class attributes of the FTP handler (timeout, banner,
      use_sendfile, ...).
    """
    with warnings.catch_warnings():
        # pyftpdlib is built on asyncore/asynchat, deprecated since Python 3.10.
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyftpdlib.authorizers import DummyAuthorizer
        from pyftpdlib.handlers import FTPHandler, TLS_FTPHandler
        from pyftpdlib.ioloop import IOLoop
        from pyftpdlib.servers import ThreadedFTPServer

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    authorizer = DummyAuthorizer()
    authorizer.add_user(user, password, str(root), perm="elradfmwMT")
    if anonymous:
        authorizer.add_anonymous(str(root))  # read-only: "elr"
    stats = _ConnectionStats()
    cleanup_dirs: list[Path] = []
    ca_pem = None

    base: type = TLS_FTPHandler if tls else FTPHandler
    attrs: dict[str, Any] = {
        "authorizer": authorizer,
        "passive_ports": list(passive_ports) if passive_ports else None,
        # pyftpdlib waits 3 s before answering a wrong password; tests of bad
        # credentials should not take that long.
        "auth_failed_timeout": 0.05,
        "timeout": 120,
    }
    if filesystem is not None:
        attrs["abstracted_fs"] = filesystem
    if tls:
        tls_dir = Path(tempfile.mkdtemp(prefix="xfer-ftps-"))
        cleanup_dirs.append(tls_dir)
        ca_pem, cert_pem, key_pem = _write_tls_files(tls_dir)
        attrs.update(
            certfile=str(cert_pem),
            keyfile=str(key_pem),
            ssl_context=None,  # per class: built from our files, not inherited
            tls_control_required=tls_required,
            tls_data_required=tls_required,
        )
    attrs.update(handler_attrs or {})

    class CountingHandler(base):  # type: ignore[valid-type, misc]
        """Counts every accepted control connection from accept to close."""

        _xfer_counted = False

        def __init__(self, conn: Any, server: Any, ioloop: Any = None) -> None:
            super().__init__(conn, server, ioloop)
            if self.connected and not self._closed:
                stats.opened()
                self._xfer_counted = True

        def handle_max_cons(self) -> None:
            # pyftpdlib's version closes at once and may drop the 421 unsent.
            stats.refuse()
            self.respond_w_warning("421 Too many connections. Service temporarily unavailable.")
            self.close_when_done()

        def handle_max_cons_per_ip(self) -> None:
            stats.refuse()
            super().handle_max_cons_per_ip()

        def close(self) -> None:
            if self._xfer_counted:
                self._xfer_counted = False
                stats.closed()
            super().close()

    for name, value in attrs.items():
        setattr(CountingHandler, name, value)

    class Server(ThreadedFTPServer):
        # Worker threads notice a stop request within this many seconds.
        poll_timeout = 0.1

        def _accept_new_cons(self) -> bool:
            # Called after the new handler has been counted.
            return not max_cons or stats.open <= max_cons

    server = Server((HOST, 0), CountingHandler, ioloop=IOLoop())
    server.max_cons = 0
    server.max_cons_per_ip = max_cons_per_ip
    port = server.address[1]
    stop_event = threading.Event()

    def serve() -> None:
        try:
            while not stop_event.is_set():
                server.serve_forever(timeout=0.05, blocking=False, handle_exit=False)
        finally:
            server.close_all()

    thread = threading.Thread(target=serve, name=f"pyftpdlib:{port}", daemon=True)
    thread.start()

    def stop() -> None:
        stop_event.set()
        thread.join(timeout=10)
        for directory in cleanup_dirs:
            shutil.rmtree(directory, ignore_errors=True)
        if thread.is_alive():
            raise RuntimeError(f"pyftpdlib on port {port} did not stop within 10 s")

    return FtpServer(
        host=HOST,
        port=port,
        root=root,
        user=user,
        password=password,
        kind="pyftpdlib",
        ca_pem=ca_pem,
        _stop=stop,
        _stats=stats,
    )


# ------------------------------------------------------------------------ vsftpd


def _ensure_vsftpd_user() -> None:
    """Create the system user and the PAM service once per machine (idempotent, under
    a file lock: parallel test processes may race here)."""
    global _setup_done
    if _setup_done:
        return
    _SETUP_LOCK.parent.mkdir(parents=True, exist_ok=True)
    with open(_SETUP_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # vsftpd enters the home directory before local_root: it must exist.
        _VSFTPD_HOME.mkdir(mode=0o755, parents=True, exist_ok=True)
        try:
            entry = pwd.getpwnam(VSFTPD_USER)
        except KeyError:
            subprocess.run(
                ["useradd", "--system", "--no-create-home", "--home-dir", str(_VSFTPD_HOME),
                 "--shell", "/usr/sbin/nologin", VSFTPD_USER],
                check=True, capture_output=True,
            )
        else:
            if entry.pw_dir != str(_VSFTPD_HOME):
                subprocess.run(["usermod", "--home", str(_VSFTPD_HOME), VSFTPD_USER],
                               check=True, capture_output=True)
        # Always (re)set: cheap, and repairs a user left with another password.
        subprocess.run(["chpasswd"], input=f"{VSFTPD_USER}:{VSFTPD_PASSWORD}\n",
                       text=True, check=True, capture_output=True)
        pam = Path("/etc/pam.d") / _PAM_SERVICE
        if not pam.exists() or pam.read_text() != _PAM_CONFIG:
            tmp = pam.with_suffix(".tmp")
            tmp.write_text(_PAM_CONFIG)
            tmp.replace(pam)
        # vsftpd's secure_chroot_dir: an empty directory owned by root, not writable.
        Path("/var/run/vsftpd/empty").mkdir(parents=True, exist_ok=True)
    _setup_done = True


def _check_traversable(path: Path) -> None:
    """vsftpd enters local_root as the login user: every parent must be o+x."""
    for parent in path.resolve().parents:
        if not os.stat(parent).st_mode & 0o001:
            raise ValueError(
                f"vsftpd root {path}: {parent} is not searchable by others, the login "
                f"user cannot reach it (pytest's tmp_path is under a 0700 directory; "
                f"use make_vsftpd_root())"
            )


def make_vsftpd_root() -> Path:
    """An empty directory under /tmp that the vsftpd login user can reach and write.
    The caller removes it (the fixtures do)."""
    root = Path(tempfile.mkdtemp(prefix="xfer-vsftpd-root-"))
    root.chmod(0o755)
    entry = pwd.getpwnam(VSFTPD_USER)
    os.chown(root, entry.pw_uid, entry.pw_gid)
    _grant_by_default_acl(root, entry.pw_uid)
    return root


def _grant_by_default_acl(root: Path, uid: int) -> None:
    """A default POSIX ACL on root: what the test creates inside (as root) stays
    writable by the vsftpd user, so uploads into subdirectories and overwrites work
    without chown_root(). Written as the raw xattr (no setfacl in the image); where the
    filesystem has no ACLs, chown_root() is the way."""
    undefined = 0xFFFFFFFF
    # (tag, permissions, id): user::rwx, user:<uid>:rwx, group::r-x, mask::rwx, other::r-x
    entries = [(0x01, 7, undefined), (0x02, 7, uid), (0x04, 5, undefined),
               (0x10, 7, undefined), (0x20, 5, undefined)]
    blob = struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *e) for e in entries)
    try:
        os.setxattr(root, "system.posix_acl_access", blob)
        os.setxattr(root, "system.posix_acl_default", blob)
    except OSError:
        pass


def _children(pid: int) -> list[int]:
    """PIDs whose parent is pid (any state, zombies included: not reaped yet)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat_file:
                fields = stat_file.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return found


def _wait_no_children(pid: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while _children(pid) and time.monotonic() < deadline:
        time.sleep(0.01)


def start_vsftpd(
    root: Path,
    tmp: Path,
    *,
    max_per_ip: int = 0,
    max_clients: int = 0,
    tls: bool = False,
    tls_required: bool = True,
    implicit_tls: bool = False,
    pasv_ports: range | None = None,
    extra_config: dict[str, str] | None = None,
) -> FtpServer:
    """vsftpd in the foreground on a free port, config and logs in ``tmp``.

    root must be reachable by the system user ``xfertest`` (see make_vsftpd_root);
    anonymous logins read it, ``xfertest`` reads and writes it (chroot'ed there).
    max_per_ip/max_clients: vsftpd's own limits, exceeding them gets a 421.
    tls: explicit FTPS with a trustme certificate (tls_required forces it for the
      user's login and data; anonymous may still use plain FTP).
    implicit_tls: with tls, implicit FTPS instead: TLS from the first byte on the
      listening port (vsftpd's implicit_ssl), the port 990 style.
    pasv_ports: a fixed passive port range; default: any free port from the kernel.
    extra_config: more vsftpd.conf lines, they win over ours.
    """
    binary = require_binary(VSFTPD_BINARY, "vsftpd")
    require_root("vsftpd (chroot, PAM, a system user)")
    _ensure_vsftpd_user()
    root = Path(root)
    tmp = Path(tmp)
    tmp.mkdir(parents=True, exist_ok=True)
    _check_traversable(root)
    log_path = tmp / "vsftpd.log"
    config: dict[str, str] = {
        "listen": "YES",
        "listen_ipv6": "NO",
        "listen_address": HOST,
        "listen_port": "",  # below: a free port, again if another process takes it
        "background": "NO",
        # The kernel features vsftpd sandboxes itself with are missing in containers.
        "seccomp_sandbox": "NO",
        "isolate": "NO",
        "isolate_network": "NO",
        "max_clients": str(max_clients),
        "max_per_ip": str(max_per_ip),
        "anonymous_enable": "YES",
        "no_anon_password": "YES",
        "anon_root": str(root),
        "anon_upload_enable": "NO",
        "anon_mkdir_write_enable": "NO",
        "anon_other_write_enable": "NO",
        "local_enable": "YES",
        "write_enable": "YES",
        "local_umask": "022",
        "local_root": str(root),
        "chroot_local_user": "YES",
        "allow_writeable_chroot": "YES",
        "pam_service_name": _PAM_SERVICE,
        "userlist_enable": "NO",
        "secure_chroot_dir": "/var/run/vsftpd/empty",
        "pasv_enable": "YES",
        "pasv_address": HOST,
        "pasv_promiscuous": "NO",
        "port_enable": "YES",
        "connect_from_port_20": "NO",
        "force_dot_files": "YES",
        "hide_ids": "NO",
        "use_localtime": "NO",  # LIST and MDTM in UTC
        "dirmessage_enable": "NO",
        "delay_failed_login": "0",
        "delay_successful_login": "0",
        "idle_session_timeout": "120",
        "data_connection_timeout": "120",
        "xferlog_enable": "YES",
        "xferlog_std_format": "NO",
        "log_ftp_protocol": "YES",
        "vsftpd_log_file": str(log_path),
        "ftpd_banner": "xfer test vsftpd",
    }
    if pasv_ports:
        config["pasv_min_port"] = str(pasv_ports.start)
        config["pasv_max_port"] = str(pasv_ports[-1])
    ca_pem = None
    if tls:
        ca_pem, cert_pem, key_pem = _write_tls_files(tmp)
        required = "YES" if tls_required else "NO"
        config.update(
            ssl_enable="YES",
            rsa_cert_file=str(cert_pem),
            rsa_private_key_file=str(key_pem),
            allow_anon_ssl="YES",
            force_anon_logins_ssl="NO",
            force_anon_data_ssl="NO",
            force_local_logins_ssl=required,
            force_local_data_ssl=required,
            require_ssl_reuse="NO",  # Python's ftplib does not reuse TLS sessions
            ssl_ciphers="HIGH",  # vsftpd's default (DES-CBC3-SHA) is gone from OpenSSL
            ssl_sslv2="NO",
            ssl_sslv3="NO",
            ssl_tlsv1="YES",
            ssl_request_cert="NO",
        )
        if implicit_tls:
            config["implicit_ssl"] = "YES"
    config.update(extra_config or {})
    config_path = tmp / "vsftpd.conf"
    stderr_path = tmp / "vsftpd.stderr"
    argv = [binary, str(config_path)]
    for attempt in range(5):
        port = free_port()
        config["listen_port"] = str(port)
        config_path.write_text("".join(f"{key}={value}\n" for key, value in config.items()))
        with open(stderr_path, "wb") as stderr:
            proc = subprocess.Popen(
                # vsftpd writes "500 OOPS: ..." to fd 0 (the control connection under
                # inetd), so stdin goes to the file too.
                argv, stdin=stderr, stdout=stderr, stderr=stderr,
                start_new_session=True,  # no terminal signals from the test run
            )
        try:
            if _wait_vsftpd_ready(proc, port):
                break
        except BaseException:
            _stop_vsftpd(proc, argv)
            raise
        message = stderr_path.read_text(errors="replace")
        _stop_vsftpd(proc, argv)
        if "could not bind" not in message or attempt == 4:
            raise RuntimeError(f"vsftpd exited with {proc.returncode}: {message!r}")

    def stop() -> None:
        _stop_vsftpd(proc, argv)

    return FtpServer(
        host=HOST,
        port=port,
        root=root,
        user=VSFTPD_USER,
        password=VSFTPD_PASSWORD,
        kind="vsftpd",
        ca_pem=ca_pem,
        log_path=log_path,
        _stop=stop,
    )


def _wait_vsftpd_ready(proc: subprocess.Popen[bytes], port: int) -> bool:
    """True once vsftpd accepts connections, False if it exited (e.g. the port was
    taken between free_port() and its bind)."""
    deadline = time.monotonic() + 10
    while True:
        if proc.poll() is not None:
            return False
        try:
            wait_port(port, timeout=0.1, host=HOST)
            break
        except TimeoutError:
            if time.monotonic() > deadline:
                raise
    # The probe was a session: wait until vsftpd has reaped it, or it would still
    # count against max_per_ip for the test's first connection.
    _wait_no_children(proc.pid, timeout=5)
    return proc.poll() is None


def _vsftpd_pids(argv: list[str]) -> list[int]:
    """Live processes of one vsftpd instance: the listener and every session process.
    Sessions call setsid() and outlive the listener, so neither the process group nor
    the parent link finds them; their command line (with our unique config path) does."""
    wanted = ("\0".join(argv) + "\0").encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as cmdline:
                if cmdline.read() == wanted:
                    found.append(int(entry))
        except OSError:
            continue
    return found


def _stop_vsftpd(proc: subprocess.Popen[bytes], argv: list[str]) -> None:
    """SIGTERM the listener, then SIGKILL its session processes (they would otherwise
    serve their clients until idle_session_timeout)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=3)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
    deadline = time.monotonic() + 5
    while pids := _vsftpd_pids(argv):
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"vsftpd processes {pids} survive SIGKILL")
        time.sleep(0.01)


# ----------------------------------------------------------------------- fixtures


@contextmanager
def running_pyftpdlib(tmp: Path, **options: Any) -> Iterator[FtpServer]:
    """start_pyftpdlib with root tmp/"root", stopped on exit whatever happens."""
    server = start_pyftpdlib(tmp / "root", **options)
    try:
        yield server
    finally:
        server.stop()


@contextmanager
def running_vsftpd(tmp: Path, **options: Any) -> Iterator[FtpServer]:
    """start_vsftpd with a fresh root from make_vsftpd_root, config in tmp/"vsftpd";
    stopped and the root removed on exit whatever happens."""
    require_binary(VSFTPD_BINARY, "vsftpd")
    require_root("vsftpd (chroot, PAM, a system user)")
    _ensure_vsftpd_user()
    root = make_vsftpd_root()
    try:
        server = start_vsftpd(root, tmp / "vsftpd", **options)
        try:
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(root, ignore_errors=True)


# The fixtures only use pytest's own fixtures, so that importing one of them alone
# (``from tests.servers.ftp import ftp_server``) is enough.


@pytest.fixture
def pyftpd(tmp_path: Path) -> Iterator[FtpServer]:
    """pyftpdlib with an empty root (tmp_path/"root"), no limits, no TLS."""
    with running_pyftpdlib(tmp_path) as server:
        yield server


@pytest.fixture
def vsftpd(tmp_path: Path) -> Iterator[FtpServer]:
    """vsftpd with an empty root under /tmp (reachable by its login user)."""
    with running_vsftpd(tmp_path) as server:
        yield server


@pytest.fixture(params=["pyftpdlib", "vsftpd"])
def ftp_server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[FtpServer]:
    """Each test runs against pyftpdlib and against vsftpd (empty root, no limits)."""
    running = running_pyftpdlib if request.param == "pyftpdlib" else running_vsftpd
    with running(tmp_path) as server:
        yield server


def hostile_filesystem(names: list[str]) -> type:
    """A pyftpdlib filesystem that lists `names` beside the real files of the root,
    each stat-ing as the root's `bait.txt`, so the server lists them as ordinary
    files: what a hostile or broken server could send (`../x`, `/etc/passwd`, NUL)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyftpdlib.filesystems import AbstractedFS

    class HostileFS(AbstractedFS):  # type: ignore[misc]
        def listdir(self, path: str) -> list[str]:
            listed = super().listdir(path)
            return listed + names if os.path.realpath(path) == os.path.realpath(self.root) else listed

        def _bait(self, path: str) -> str:
            return os.path.join(self.root, "bait.txt") if any(path.endswith(name) for name in names) else path

        def stat(self, path: str) -> Any:
            return super().stat(self._bait(path))

        def lstat(self, path: str) -> Any:
            return super().lstat(self._bait(path))

    return HostileFS
