"""FTPS data connections resume the control connection's TLS session: vsftpd with
`require_ssl_reuse=YES` (its default) refuses any data connection that does not.
Every data connection of a session goes through one session-bound context
(protocols/ftp_tls), which must take the control connection's session as it is at
each handshake, listings and downloads alike, over one connection and several."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.ftp_helpers import fill, job_report, run_inprocess, tree, write_jobs
from tests.servers.ftp import running_vsftpd

FILES: dict[str, bytes | str] = {f"d{d}/f{i}.txt": f"file {d}/{i}\n" * (i + 1) for d in range(3) for i in range(6)}


@pytest.mark.parametrize("implicit", [False, True])
def test_data_connections_resume_the_control_session(tmp_path: Path, implicit: bool) -> None:
    with running_vsftpd(
        tmp_path / "srv", tls=True, implicit_tls=implicit, extra_config={"require_ssl_reuse": "YES"}
    ) as server:
        fill(server.root, FILES)
        server.chown_root()
        url = server.url("/", scheme="ftps", with_password=True)
        tls = "    tls: implicit\n" if implicit else ""
        path = write_jobs(
            tmp_path,
            f"""
hosts:
  "{server.host}:{server.port}":
    max_connections: 2
    ca_file: {server.ca_pem}
jobs:
  - name: reuse
    kind: ftp.mirror
{tls}    remote: "{url}"
    local: out
""",
        )
        report = job_report(run_inprocess(path), "reuse")
        assert report["status"] == "ok" and report["tasks"]["ok"] == len(FILES), report["errors"]
        assert tree(tmp_path / "out") == tree(server.root)
