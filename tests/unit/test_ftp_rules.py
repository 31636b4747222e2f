"""Pure rules of the FTP kinds: patterns, version order, time comparison, specs,
rate limits and error translation (no network)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone
from pathlib import Path

import pytest

from xfer.errors import AuthError, ConnectionLimitError, PermanentError, SpecError, TransientError
from xfer.kinds._ftp_common import same_remote_time, up_to_date
from xfer.kinds._versions import version_key
from xfer.kinds._pathfilter import PathFilter
from xfer.protocols.ftp import FtpConnection, FtpSettings
from xfer.protocols.ftp_listing import RemoteEntry
from xfer.protocols.ftp_reply import StatusError
from xfer.ratelimit import TokenBucket
from xfer.spec import parse_job_text
from xfer.urls import parse_url


@pytest.mark.parametrize(
    ("path", "wanted"),
    [
        ("x.py", True),
        ("a/b/c.py", True),
        ("src/secret.py", False),  # excluded by path
        ("tmp/x.py", False),  # excluded directory, at the top
        ("z/tmp/y.py", False),  # ... and at any depth (no "/" inside the pattern)
        ("doc1.pdf", True),
        ("d/doc2.pdf", True),
        ("x.tar.gz", True),  # "**/" spans zero directories too
        ("a/b/x.tar.gz", True),
        ("keep/any.bin", True),  # an included directory takes everything below
        ("other.bin", False),
    ],
)
def test_include_exclude_rules(path: str, wanted: bool) -> None:
    rules = PathFilter(["*.py", "doc*.pdf", "**/*.tar.gz", "keep/"], ["tmp/", "src/secret.py"])
    assert rules.wants_file(path) is wanted


def test_excluded_directories_are_not_walked() -> None:
    rules = PathFilter([], ["tmp/", "/build"])
    assert not rules.walk_dir("tmp") and not rules.walk_dir("a/tmp")
    assert not rules.walk_dir("build") and rules.walk_dir("a/build")
    assert rules.walk_dir("src")


def test_version_order() -> None:
    names = ["tool-1.9.tar.gz", "tool-1.10.tar.gz", "tool-1.2.tar.gz", "tool-0.99.tar.gz"]
    assert max(names, key=version_key) == "tool-1.10.tar.gz"


def test_times_compare_at_the_coarser_precision_and_never_across_kinds() -> None:
    minute = RemoteEntry("f", "file", 3, datetime(2024, 5, 1, 12, 30), "minute")
    assert same_remote_time("2024-05-01T12:30:00", "minute", minute)
    day = RemoteEntry("f", "file", 3, datetime(2024, 5, 1), "day")  # the same file, six months on
    assert same_remote_time("2024-05-01T12:30:00", "minute", day)
    utc = RemoteEntry("f", "file", 3, datetime(2024, 5, 1, 12, 30, tzinfo=timezone.utc), "second")
    assert not same_remote_time("2024-05-01T12:30:00", "minute", utc)  # LIST then MLSD: fetch again


def test_up_to_date_without_state_compares_size_and_time(tmp_path: Path) -> None:
    local = tmp_path / "f"
    local.write_bytes(b"abc")
    stamp = datetime(2024, 5, 1, 12, 30, 10, tzinfo=timezone.utc).timestamp()
    import os

    os.utime(local, (stamp, stamp))
    assert up_to_date(None, RemoteEntry("f", "file", 3, datetime(2024, 5, 1, 12, 30), "minute"), local)
    assert not up_to_date(None, RemoteEntry("f", "file", 4, datetime(2024, 5, 1, 12, 30), "minute"), local)
    assert not up_to_date(None, RemoteEntry("f", "file", 3, datetime(2024, 5, 1, 12, 31), "minute"), local)


def _spec(body: str) -> None:
    parse_job_text("jobs:\n  - name: j\n" + body, "t.yaml")


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("    kind: ftp.mirror\n    remote: ftp://h/\n    local: x\n    recursive: false\n    max_depth: 2\n", "max_depth"),
        ("    kind: ftp.mirror\n    remote: ftp://h/\n    local: x\n    direction: upload\n    delete: true\n", "delete"),
        ("    kind: ftp.mirror\n    remote: ftp://h/\n    local: x\n    tls: implicit\n", "ftps://"),
        ("    kind: ftp.mirror\n    remote: http://h/\n    local: x\n", "scheme"),
        ("    kind: ftp.mirror\n    remote: ftp://h/\n    local: x\n    archive_path: a.zip\n", "archive"),
        ("    kind: ftp.pull\n    remote: ftp://h/\n    local: x\n    pick_by: mtime\n", "pick_by"),
        ("    kind: ftp.mirror\n    remote: ftp://h/\n    local: x\n    rate_limit: fast\n", "size"),
    ],
)
def test_contradictory_specs_are_refused(body: str, message: str) -> None:
    with pytest.raises(SpecError, match=message):
        _spec(body)


def test_token_bucket_sleeps_off_its_debt(monkeypatch: pytest.MonkeyPatch) -> None:
    slept: list[float] = []

    async def fake_sleep(delay: float) -> None:
        slept.append(delay)

    monkeypatch.setattr(asyncio, "sleep", fake_sleep)
    bucket = TokenBucket(1000, burst=1000)
    asyncio.run(bucket.consume(1000))  # the burst: no wait
    asyncio.run(bucket.consume(2000))  # two seconds of debt
    assert slept[0] == pytest.approx(2.0, abs=0.05) and len(slept) == 1


SECRET = "s3cr3t-pass"


def _connection() -> FtpConnection:
    url = parse_url(f"ftp://user:{SECRET}@example.invalid/")
    return FtpConnection(url, FtpSettings())


@pytest.mark.parametrize(
    ("code", "logged_in", "error"),
    [
        ("421", False, ConnectionLimitError),
        ("421", True, TransientError),
        ("425", True, TransientError),
        ("426", True, TransientError),
        ("450", True, TransientError),
        ("451", True, TransientError),
        ("530", False, AuthError),
        ("550", True, PermanentError),
    ],
)
def test_reply_codes_translate(code: str, logged_in: bool, error: type[Exception]) -> None:
    conn = _connection()
    conn._logged_in = logged_in
    with pytest.raises(error) as caught:
        with conn._guard("RETR /x"):
            raise StatusError(("1xx",), code, [" some reply"])
    assert code in str(caught.value) and "RETR /x" in str(caught.value)
    assert type(caught.value) is error


def test_password_never_in_translated_errors() -> None:
    conn = _connection()
    with pytest.raises(AuthError) as caught:
        with conn._guard(f"PASS {SECRET}"):
            # A server that echoes what it got: the text must still not carry the secret.
            raise StatusError(("230",), "530", [f" bad password {SECRET}"])
    assert SECRET not in str(caught.value) and "PASS" in str(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


@pytest.mark.parametrize("path", sorted(Path(__file__).resolve().parents[2].joinpath("jobs").glob("ftp-*.yaml")))
def test_example_job_files_validate(path: Path) -> None:
    from xfer.spec import load_job_file

    assert load_job_file(path).jobs
