"""nntp.scan over nntps:// against a real INN2 nnrpd speaking implicit TLS (nnrpd -S):
certificates are verified by default, `ca_file` trusts a private CA, `tls_verify: false`
is the explicit opt-out, and a login over TLS never shows its password."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.test_nntp_scan import read_jsonl, run_jobs
from tests.servers.inn import NewsServer, make_article, start_news_server

pytestmark = pytest.mark.timeout(300)

GROUP = "xfer.tls"
SECRET = "tls-s3cret!Pass"


@pytest.fixture(scope="module")
def tls_news(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[NewsServer, list[str]]]:
    server = start_news_server(tmp_path_factory.mktemp("inn-tls"), users={"reader": SECRET}, tls=True)
    try:
        server.create_group(GROUP)
        ids = server.post_articles(make_article(GROUP, f"over tls {i}", f"body {i}\n") for i in range(25))
        yield server, ids
    finally:
        server.stop(graceful=False)


def _job(tmp_path: Path, server: NewsServer, host_block: str, *, port: int | None = None) -> str:
    return (
        f"  retries: 3\nhosts:\n  {server.host}:\n    max_connections: 2\n{host_block}jobs:\n"
        f"  - name: secure\n    kind: nntp.scan\n    server: nntps://{server.host}:{port or server.tls_port}\n"
        f"    groups: [{GROUP}]\n    jsonl: {tmp_path / 'out.jsonl'}\n"
    )


def _ca_file(tmp_path: Path, server: NewsServer) -> Path:
    assert server.ca_pem is not None
    path = tmp_path / "ca.pem"
    path.write_bytes(server.ca_pem)
    return path


def test_ca_file_trusts_the_server(tls_news, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, ids = tls_news
    report, _ = run_jobs(tmp_path, _job(tmp_path, server, f"    ca_file: {_ca_file(tmp_path, server)}\n"))
    assert report["secure"]["status"] == "ok", report["secure"]["errors"]
    assert [r["message_id"] for r in read_jsonl(tmp_path / "out.jsonl")] == ids


def test_unknown_ca_fails_once_with_one_clear_line(tls_news, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, _ = tls_news
    report, _ = run_jobs(tmp_path, _job(tmp_path, server, ""))
    secure = report["secure"]
    assert secure["status"] == "failed"
    assert secure["retries"] == 0  # a certificate does not get better by retrying
    (error,) = set(secure["errors"])
    assert "\n" not in error and "Traceback" not in error
    assert "certificate verification failed" in error and "tls_verify: false" in error and "ca_file" in error
    assert not (tmp_path / "out.jsonl").exists() or read_jsonl(tmp_path / "out.jsonl") == []


def test_tls_verify_false_is_the_opt_out(tls_news, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, ids = tls_news
    report, _ = run_jobs(tmp_path, _job(tmp_path, server, "    tls_verify: false\n"))
    assert report["secure"]["status"] == "ok", report["secure"]["errors"]
    assert len(read_jsonl(tmp_path / "out.jsonl")) == len(ids)


def test_password_over_tls_never_in_output(tls_news, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    server, ids = tls_news
    ca = _ca_file(tmp_path, server)
    for password, ok in ((SECRET, True), ("wrong-" + SECRET, False)):
        (tmp_path / "out.jsonl").unlink(missing_ok=True)
        job = tmp_path / "auth.yaml"
        job.write_text(
            f"defaults:\n  state: {tmp_path / 'state.db'}\n"
            + _job(tmp_path, server, f"    ca_file: {ca}\n    user: reader\n    password: '{password}'\n",
                   port=server.tls_auth_port).replace("  retries: 3\n", "  retries: 0\n")
        )
        done = subprocess.run(
            [sys.executable, "-m", "xfer", "run", str(job), "--json", "--report", str(tmp_path / "r.json")],
            capture_output=True, text=True,
        )
        assert (done.returncode == 0) is ok, done.stdout[-2000:] + done.stderr[-2000:]
        report = json.loads((tmp_path / "r.json").read_text())
        seen = done.stdout + done.stderr + json.dumps(report)
        assert SECRET not in seen
        if ok:
            assert len(read_jsonl(tmp_path / "out.jsonl")) == len(ids)
        else:
            assert "481" in seen or "uthentication" in seen
