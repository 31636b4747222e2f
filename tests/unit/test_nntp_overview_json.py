"""The OVER-block-to-JSONL shortcut writes exactly what the dict path writes."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xfer.news.jsonl import Encoded, encode_record
from xfer.news.overview import OverviewFormat
from xfer.news.overview_json import OverviewEncoder

INN_FORMAT = ["Subject:", "From:", "Date:", "Message-ID:", "References:", ":bytes", ":lines", "Xref:full"]
FIRST = {"server": "127.0.0.1:119", "group": "comp.lang.python"}

# Pieces that each take a different road: plain text (most of them, so that whole lines
# take the shortcut), JSON escapes, RFC 2047, non-ASCII and Unicode whitespace at a
# field's ends, invalid UTF-8, stray separators, numbers with leading zeros.
PLAIN = [b"a", b"Re: hello", b" ", b"<id@x>", b"\xc3\xa9", b"\xc2\xa0", b"\xe2\x80\xa8", b"007", b"12", b"0",
         b"\xd9\xa3", b"Xref: ", b"XREF:", b"host g:1", b"9" * 20, b"=?utf-8?q?w=C3=B6rld?=", b"=?"]
SPECIAL = [b"\"", b"\\", b"\xff", b"\x00", b"\x1f", b"\x0b", b"\r", b"\n", b"\t"]
field = st.lists(st.sampled_from(PLAIN * 6 + SPECIAL), max_size=4).map(b"".join)
number = st.one_of(st.integers(0, 10**6).map(lambda n: str(n).encode()), field)
fields = st.sampled_from([6, 7, 7, 7, 8, 8, 8, 9]).flatmap(lambda n: st.lists(field, min_size=n, max_size=n))
line = st.tuples(number, fields).map(lambda t: b"\t".join([t[0], *t[1]]))


def encoded(fmt: OverviewFormat, *pieces: bytes) -> Encoded:
    encoder = OverviewEncoder(fmt, FIRST)
    for piece in pieces:
        encoder.feed(piece)
    return encoder.take()


def dict_path(fmt: OverviewFormat, block: bytes) -> bytes:
    lines = [encode_record(record) for record in fmt.parse(block, FIRST)]
    return ("\n".join(lines) + "\n").encode() if lines else b""


@settings(max_examples=500)
@given(st.lists(line, max_size=6), st.sampled_from([INN_FORMAT, INN_FORMAT[:7], INN_FORMAT + ["X-Trace:full"]]))
def test_same_bytes_as_the_dict_path(lines: list[bytes], format_lines: list[str]) -> None:
    fmt = OverviewFormat.from_lines(format_lines)
    block = b"".join(raw + b"\r\n" for raw in lines)
    whole = encoded(fmt, block)
    assert whole.data == dict_path(fmt, block)
    assert whole.count == whole.data.count(b"\n")
    cut = len(lines) // 2  # a reply's lines fed in two pieces as they arrive: the same lines
    halves = b"".join(raw + b"\r\n" for raw in lines[:cut]), b"".join(raw + b"\r\n" for raw in lines[cut:])
    assert encoded(fmt, *halves) == whole


def test_fast_lines_are_plain_json() -> None:
    fmt = OverviewFormat.from_lines(INN_FORMAT)
    block = (
        b"3\tHello w\xc3\xb6rld\tA <a@x>\tMon, 1 Jan 2024 10:00:00 +0000\t <m3@x> \t<r1@x>  <r2@x>\t0321\t4"
        b"\tXref: host comp.lang.python:3\r\n"
        b"4\tsays \"hi\"\tB <b@x>\t\t<m4@x>\t\t\t\tXref: host g:4\r\n"
        b"junk\r\n"
    )
    result = encoded(fmt, block)
    first, second = (json.loads(row) for row in result.data.splitlines())
    assert result.count == 2
    assert first == {
        **FIRST, "number": 3, "subject": "Hello wörld", "from": "A <a@x>", "date": "Mon, 1 Jan 2024 10:00:00 +0000",
        "message_id": "<m3@x>", "references": ["<r1@x>", "<r2@x>"], "bytes": 321, "lines": 4,
        "xref": "host comp.lang.python:3",
    }
    assert second["subject"] == 'says "hi"' and second["bytes"] is None


@pytest.mark.parametrize(
    "raw",
    [
        b"1\ts\tf\td\t<id>\xc2\xa0\t\t1\t1\tXref: h g:1",  # Unicode space: bytes.strip() keeps it
        b"1\ts\tf\td\t<id>\t<a>\xe2\x80\xa8<b>\t1\t1\tXREF: h g:1",  # U+2028 splits references
        b"1\ts\tf\td\t<id>\t <a>  <b> \t1\t1\tXref: h g:1",  # spaces around and between references
        b"1\ts\tf\td\t<id>\t<a> <b> \t1\t1\tXref: h g:1",
        b"1\t=?utf-8?q?w=C3=B6rld?=\tf\td\t<id>\t\t1\t1\tXref: h g:1",
        b"\xd9\xa3\ts\tf\td\t<id>\t\t1\t1\tXref: h g:1",  # an Arabic-Indic digit is no number
        b"0001\ts\tf\td\t<id>\t\t007\t\xd9\xa3\tXref: h g:1",
        b"1\ts\tf\td\t<id>\t\t" + b"9" * 20 + b"\t1\tXref: h g:1",
        b"9" * 20 + b"\ts\tf\td\t<id>\t\t1\t1\tXref: h g:1",
        b"1\ta\nb\tf\td\t<id>\t\t1\t1\tXref: h g:1",  # a lone LF or CR must be escaped
        b"1\ta\rb\tf\td\t<id>\t\t1\t1\tXref: h g:1",
        b"1\tcaf\xe9\tf\td\t<id>\t\t1\t1\tXref: h g:1",  # Latin-1 between UTF-8 lines
    ],
)
def test_edge_lines(raw: bytes) -> None:
    fmt = OverviewFormat.from_lines(INN_FORMAT)
    good = b"2\ts\tf\td\t<id>\t\t1\t1\tXref: h g:2\r\n"
    block = good + raw + b"\r\n" + good + raw + b"\r\n" + good
    assert encoded(fmt, block).data == dict_path(fmt, block)
