"""Runs use records, not pydantic models: a run of a cached job file imports no
pydantic, and the records say what the models say."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import xfer
from xfer.jobfile import NO_HOST_BLOCK
from xfer.records import Record
from xfer.spec import HostConfig
from xfer.specvalidate import to_record
from xfer.urls import Secret

#: One job of every kind, each aimed at a port where nothing listens.
JOBS = """\
defaults: {retries: 0, connect_timeout: 2}
hosts:
  "127.0.0.1:1": {user: probe, password: host-secret-4711}
jobs:
  - {name: mirror, kind: ftp.mirror, remote: "ftp://127.0.0.1:1/", local: mirror}
  - {name: pull, kind: ftp.pull, remote: "ftp://127.0.0.1:1/", local: pulled}
  - name: load
    kind: mail.load
    smtp: smtp://127.0.0.1:1
    envelope: {from: a@example.org, to: b@example.org}
    count: 1
  - {name: scan, kind: nntp.scan, server: "nntp://127.0.0.1:1", groups: [a.b], jsonl: scan.jsonl, match: {subject: {any: [x]}}}
  - {name: fetch, kind: mail.fetch, source: "imap://u:url-secret-0815@127.0.0.1:1", dest: mail}
  - name: roundtrip
    kind: mail.roundtrip
    smtp: smtp://127.0.0.1:1
    fetch: pop3://127.0.0.1:1
    envelope: {from: a@example.org, to: b@example.org}
    timeout: 1
  - {name: send, kind: mail.send, smtp: "smtp://127.0.0.1:1", from: a@example.org, to: [b@example.org], subject: s, text: t}
  - name: sessions
    kind: mail.sessions
    server: imap://127.0.0.1:1/INBOX
    users: {pattern: "u{n}@example.org", count: 1, password: user-secret-1234}
    count: 1
"""

#: `xfer run`, then what the process imported (printed as JSON on the last line).
RUN = """\
import json, sys
from xfer.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _run(tmp_path: Path, path: Path) -> dict:  # type: ignore[type-arg]
    env = dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache"), PYTHONPATH=str(Path(xfer.__file__).parent.parent))
    env.pop("XFER_CACHE", None)
    args = [sys.executable, "-c", RUN, "run", str(path), "--quiet", "--report", str(tmp_path / "r.json")]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=120, check=True)
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_a_cached_run_of_every_kind_imports_no_pydantic(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yaml"
    path.write_text(JOBS)
    first = _run(tmp_path, path)  # validates, and fills the cache
    assert "pydantic" in first["modules"] and "xfer.specvalidate" in first["modules"]
    second = _run(tmp_path, path)
    assert "xfer.specvalidate" not in second["modules"]  # a cache hit
    assert not [name for name in second["modules"] if name.split(".")[0] in ("pydantic", "pydantic_core")]
    assert not [name for name in second["modules"] if name.startswith("xfer.kinds._spec_")]
    report = json.loads((tmp_path / "r.json").read_text())
    assert first["code"] == second["code"] == 1
    # Every job ran and met the closed port (a load test counts that, it does not fail).
    assert {job["name"]: job["status"] for job in report["jobs"]} == {
        **dict.fromkeys(("mirror", "pull", "scan", "fetch", "roundtrip", "send"), "failed"),
        "load": "ok",
        "sessions": "ok",
    }
    for secret in ("host-secret-4711", "url-secret-0815", "user-secret-1234"):
        assert secret not in json.dumps(report)


def test_the_default_host_block_is_an_empty_host_config() -> None:
    assert NO_HOST_BLOCK == to_record(HostConfig())


def test_records_are_read_only_comparable_picklable_and_hide_secrets() -> None:
    record = to_record(HostConfig(user="u", password="s3cret", rate_limit="1M"))
    assert isinstance(record, Record) and isinstance(record.password, Secret)
    assert record.password.get_secret_value() == "s3cret" and record.rate_limit == 1024**2
    assert "s3cret" not in repr(record) and "s3cret" not in str(record.password)
    assert pickle.loads(pickle.dumps(record)) == record and hash(record) == hash(to_record(HostConfig(user="u", password="s3cret", rate_limit="1M")))
    try:
        record.user = "other"  # type: ignore[misc]
    except AttributeError:
        pass
    else:
        raise AssertionError("a record took a new value")
