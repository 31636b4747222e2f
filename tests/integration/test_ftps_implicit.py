"""Implicit FTPS (`ftps://` with `tls: implicit`: TLS from the first byte, the port
990 style) against vsftpd with implicit_ssl=YES, which refuses clear data connections
to the logged-in user: download, upload, certificate checks on by default."""

from __future__ import annotations

from pathlib import Path

from tests.integration.ftp_helpers import fill, job_report, run_cli, run_inprocess, tree, write_jobs
from tests.servers.ftp import FtpServer, running_vsftpd

FILES: dict[str, bytes | str] = {"a.txt": "secret data", "d/b.bin": bytes(range(256)) * 300}


def _job(tmp: Path, server: FtpServer, host_block: str, extra: str = "", local: str = "out") -> Path:
    url = server.url("/", scheme="ftps", with_password=True)
    return write_jobs(
        tmp,
        f"""
hosts:
  "{server.host}:{server.port}":
    max_connections: 2
{host_block}
jobs:
  - name: implicit
    kind: ftp.mirror
    tls: implicit
    remote: "{url}"
    local: {local}
{extra}
""",
    )


def _protected_logins(server: FtpServer) -> int:
    """Sessions that asked for protected data connections (PBSZ 0 then PROT P)."""
    assert server.log_path is not None
    log = server.log_path.read_text(errors="replace")
    assert log.count('"PBSZ 0"') == log.count('"PROT P"')
    return log.count('"PROT P"')


def test_implicit_ftps_download_and_upload(tmp_path: Path) -> None:
    with running_vsftpd(tmp_path / "srv", tls=True, implicit_tls=True) as server:
        fill(server.root, FILES)
        server.chown_root()
        trusted = f"    ca_file: {server.ca_pem}"

        down = job_report(run_inprocess(_job(tmp_path, server, trusted)), "implicit")
        assert down["status"] == "ok" and down["tasks"]["ok"] == 2, down["errors"]
        assert tree(tmp_path / "out") == tree(server.root)

        fill(tmp_path / "up", {"new.txt": "uploaded over TLS", "sub/c.bin": bytes(70_000)})
        up = job_report(
            run_inprocess(_job(tmp_path, server, trusted, "    direction: upload", local="up"), force=True), "implicit"
        )
        assert up["status"] == "ok" and up["tasks"]["ok"] == 2, up["errors"]
        assert (server.root / "new.txt").read_bytes() == b"uploaded over TLS"
        assert (server.root / "sub/c.bin").read_bytes() == bytes(70_000)
        assert _protected_logins(server) >= 2


def test_implicit_ftps_verifies_certificates_by_default(tmp_path: Path) -> None:
    with running_vsftpd(tmp_path / "srv", tls=True, implicit_tls=True) as server:
        fill(server.root, FILES)
        server.chown_root()

        code, report, output = run_cli(_job(tmp_path, server, ""))
        assert code == 1, output
        failed = job_report(report, "implicit")
        (error,) = failed["errors"]
        assert failed["retries"] == 0  # permanent: no retry can help
        assert "\n" not in error
        assert "certificate verification failed" in error and "tls_verify: false" in error
        assert server.password not in output and "Traceback" not in output
        assert not (tmp_path / "out").exists() or tree(tmp_path / "out") == {}

        opt_out = job_report(run_inprocess(_job(tmp_path, server, "    tls_verify: false")), "implicit")
        assert opt_out["status"] == "ok", opt_out["errors"]
        assert tree(tmp_path / "out") == tree(server.root)
