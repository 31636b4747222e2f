"""Whatever bytes arrive, inspection returns a record: no exception escapes."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from xfer.inspect.cli import table
from xfer.inspect.message import inspect_message

HEADER_NAMES = [
    b"From", b"To", b"Reply-To", b"Return-Path", b"Received", b"Subject", b"Date", b"Message-ID",
    b"X-Mailer", b"User-Agent", b"Content-Type", b"Content-Transfer-Encoding", b"Content-Disposition",
    b"MIME-Version", b"X-Authentication-Warning",
]
NASTY = st.sampled_from(
    [b"<", b">", b"@", b"\"", b"(", b")", b"=?utf-8?q?", b"=?", b"?=", b"\r\n", b"\n ", b";", b":", b",",
     b"boundary=", b"multipart/mixed", b"base64", b"\xff", b"\x00", b"xn--", b"http://", b"<a href=", b"--"]
)
VALUE = st.lists(st.one_of(NASTY, st.binary(max_size=12)), max_size=12).map(b"".join)
MESSAGE = st.lists(st.tuples(st.sampled_from(HEADER_NAMES), VALUE), max_size=10).flatmap(
    lambda headers: VALUE.map(lambda body: b"".join(name + b": " + value + b"\r\n" for name, value in headers) + b"\r\n" + body)
)

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(data: bytes) -> None:
    record = inspect_message("fuzz", data)
    json.dumps(record.as_dict(), ensure_ascii=False)
    Console(file=open("/dev/null", "w"), width=120).print(table([record]))  # noqa: SIM115
    assert record.size == len(data)


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(data: bytes) -> None:
    check(data)


@FUZZ
@given(MESSAGE)
def test_header_shaped_garbage(data: bytes) -> None:
    check(data)
