"""FTPS certificate checks, per-host connection limits and the 421 shrink."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.ftp_helpers import fill, job_report, run_cli, run_inprocess, tree, write_jobs
from tests.servers.ftp import running_pyftpdlib, running_vsftpd


def _tls_job(tmp: Path, url: str, host_key: str, host_block: str) -> Path:
    return write_jobs(
        tmp,
        f"""
hosts:
  "{host_key}":
{host_block or "    max_connections: 2"}
jobs:
  - name: secure
    kind: ftp.mirror
    remote: "{url}"
    local: out
""",
    )


@pytest.mark.parametrize("server_kind", ["pyftpdlib", "vsftpd"])
def test_ftps_verifies_certificates_by_default(tmp_path: Path, server_kind: str) -> None:
    running = running_pyftpdlib if server_kind == "pyftpdlib" else running_vsftpd
    with running(tmp_path / "srv", tls=True) as server:
        fill(server.root, {"a.txt": "secret data", "d/b.bin": bytes(range(256)) * 300})
        server.chown_root()
        url = server.url("/", scheme="ftps", with_password=True)
        key = f"{server.host}:{server.port}"

        code, report, output = run_cli(_tls_job(tmp_path, url, key, ""))
        assert code == 1
        (error,) = job_report(report, "secure")["errors"]
        assert "certificate verification failed" in error and "tls_verify: false" in error
        assert "Traceback" not in output

        opt_out = job_report(run_inprocess(_tls_job(tmp_path, url, key, "    tls_verify: false")), "secure")
        assert opt_out["status"] == "ok", opt_out["errors"]
        assert tree(tmp_path / "out") == {"a.txt": b"secret data", "d/b.bin": bytes(range(256)) * 300}

        ca = job_report(
            run_inprocess(_tls_job(tmp_path, url, key, f"    ca_file: {server.ca_pem}"), force=True), "secure"
        )
        assert ca["status"] == "ok" and ca["tasks"]["ok"] == 2, ca["errors"]


def test_limit_of_three_is_reached_and_never_exceeded(tmp_path: Path) -> None:
    with running_pyftpdlib(tmp_path / "srv") as server:
        fill(server.root, {f"d{d}/f{i}.bin": bytes(20_000) for d in range(4) for i in range(25)})
        url = server.url("/", with_password=True)
        jobs = "".join(
            f"""
  - name: site{n}
    kind: ftp.mirror
    remote: "{url}"
    local: out{n}
"""
            for n in range(4)
        )
        path = write_jobs(
            tmp_path, f'hosts:\n  "{server.host}:{server.port}":\n    max_connections: 3\njobs:{jobs}'
        )
        report = run_inprocess(path)
        assert report["exit_code"] == 0
        assert server.peak_connections == 3
        assert report["hosts"][f"{server.host}:{server.port}"]["peak"] == 3
        for n in range(4):
            assert len(tree(tmp_path / f"out{n}")) == 100


def test_server_limit_below_ours_shrinks_the_pool(tmp_path: Path) -> None:
    with running_pyftpdlib(tmp_path / "srv", max_cons=2) as server:
        fill(server.root, {f"f{i}.bin": bytes(50_000) for i in range(40)})
        path = write_jobs(
            tmp_path,
            f"""
hosts:
  "{server.host}:{server.port}":
    max_connections: 6
jobs:
  - name: m
    kind: ftp.mirror
    remote: "{server.url('/', with_password=True)}"
    local: out
""",
        )
        code, report, output = run_cli(path)
        assert code == 0, output
        host = report["hosts"][f"{server.host}:{server.port}"]
        assert host["shrinks"] and host["limit"] <= 2
        assert "421" in host["shrinks"][0]
        assert len(tree(tmp_path / "out")) == 40
        assert server.refused_connections >= 1
