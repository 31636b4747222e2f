"""The FTP reply parser (engine/protocols/ftp_reply.py): RFC 959's examples, and fuzzed
against the StreamReader loop it replaced (FtpConnection._reply before the control
channel became our own protocol), however the bytes are split into segments."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from xfer.protocols.ftp_reply import MAX_REPLY, Reply, ReplyError, ReplyParser, accepted, epsv_port, pasv_port


async def _old_reply(reader: asyncio.StreamReader) -> Reply:
    """The replaced reader, as it was (one reply; ConnectionResetError at the end)."""
    raw = await reader.readline()
    if not raw:
        raise ConnectionResetError
    line = raw.decode("utf-8", "replace").rstrip()  # it decoded strictly: see test_undecodable_bytes
    code, rest = line[:3], line[3:]
    info = [rest]
    if rest.startswith("-") or not code.isdigit():
        while True:
            raw = await reader.readline()
            if not raw:
                raise ConnectionResetError
            line = raw.decode("utf-8", "replace").rstrip()
            if line[:3] == code and line[3:4] != "-":
                info.append(line[3:])
                break
            info.append(line)
    return code, info


def _old_replies(data: bytes) -> list[Reply]:
    async def read_all() -> list[Reply]:
        reader = asyncio.StreamReader(limit=2 * MAX_REPLY)
        reader.feed_data(data)
        reader.feed_eof()
        replies = []
        while True:
            try:
                replies.append(await _old_reply(reader))
            except ConnectionResetError:
                return replies

    return asyncio.run(read_all())


def _new_replies(chunks: list[bytes]) -> list[Reply]:
    parser = ReplyParser()
    replies = [reply for chunk in chunks for reply in parser.feed(chunk)]
    return replies + parser.end()


def test_rfc959_multiline_example() -> None:
    """RFC 959 §4.2: continuation lines may start with digits; only `123 ` ends it."""
    data = b"123-First line\r\nSecond line\r\n  234 A line beginning with numbers\r\n123 The last line\r\n"
    assert _new_replies([data]) == [
        ("123", ["-First line", "Second line", "  234 A line beginning with numbers", " The last line"])
    ]


def test_single_and_pipelined_replies_in_one_segment() -> None:
    data = b"229 Entering Extended Passive Mode (|||40001|)\r\n150 Opening BINARY mode\r\n226 Transfer complete.\r\n"
    assert _new_replies([data]) == [
        ("229", [" Entering Extended Passive Mode (|||40001|)"]),
        ("150", [" Opening BINARY mode"]),
        ("226", [" Transfer complete."]),
    ]


def test_feat_reply_split_anywhere() -> None:
    data = b"211-Features:\r\n EPSV\r\n MDTM\r\n REST STREAM\r\n211 End\r\n"
    expected = [("211", ["-Features:", " EPSV", " MDTM", " REST STREAM", " End"])]
    for cut in range(len(data) + 1):
        assert _new_replies([data[:cut], data[cut:]]) == expected


def test_unfinished_reply_waits_for_more() -> None:
    parser = ReplyParser()
    assert parser.feed(b"211-Features:\r\n EPSV\r\n") == []
    assert parser.feed(b"211 En") == []
    assert parser.feed(b"d\r\n200 ok\r\n") == [("211", ["-Features:", " EPSV", " End"]), ("200", [" ok"])]


def test_undecodable_bytes_are_replaced() -> None:
    """The old reader raised UnicodeDecodeError (untranslated: a crash of the task)."""
    assert _new_replies([b"550 \xff\xfe: no such file\r\n"]) == [("550", [" \ufffd\ufffd: no such file"])]


@pytest.mark.parametrize(
    "text",
    [
        " Entering Passive Mode (127,0,0,1,4,210).",
        " Entering Passive Mode 127,0,0,1,4,210",  # no parentheses (RFC 1123: scan for the numbers)
        " =127, 0, 0, 1, 4, 210",
    ],
)
def test_pasv_port(text: str) -> None:
    assert pasv_port(text) == 4 * 256 + 210


@pytest.mark.parametrize("text", [" Entering Passive Mode", " (127,0,0,1,4)", " (127,0,0,1,4,999)"])
def test_pasv_reply_without_a_port_is_a_protocol_error(text: str) -> None:
    with pytest.raises(ReplyError):
        pasv_port(text)


def test_accepted_codes() -> None:
    assert "226" in accepted("2xx") and "150" not in accepted("2xx") and len(accepted("2xx")) == 100
    assert accepted(("220", "120")) == {"220", "120"}
    assert accepted("5x0") == {f"5{d}0" for d in range(10)}
    assert "22" not in accepted("2xx")  # a reply code is three digits: "22" is garbage, not a success


def test_epsv_port() -> None:
    assert epsv_port(" Entering Extended Passive Mode (|||50123|)") == 50123
    assert epsv_port(" ok (!!!7!)") == 7
    with pytest.raises(ReplyError):
        epsv_port(" Entering Extended Passive Mode")


def test_too_long_is_an_error() -> None:
    with pytest.raises(ReplyError):
        ReplyParser().feed(b"2" * (MAX_REPLY + 1))
    parser = ReplyParser()
    parser.feed(b"211-start\r\n")
    with pytest.raises(ReplyError):
        for _ in range(MAX_REPLY // 8 + 1):
            parser.feed(b" line 8\n")


_codes = st.sampled_from(["211", "229", "150", "226", "550", "421", "123", "abc", "21", ""])
_text = st.text(st.characters(codec="utf-8", exclude_characters="\r\n"), max_size=12).map(str.encode)
_lines = st.one_of(
    st.builds(
        lambda code, sep, text: code.encode() + sep + text, _codes, st.sampled_from([b" ", b"-", b"", b"  "]), _text
    ),
    st.binary(max_size=10).filter(lambda raw: b"\n" not in raw),
)


@settings(max_examples=400, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    lines=st.lists(_lines, max_size=12),
    endings=st.lists(st.sampled_from([b"\r\n", b"\n", b" \r\n"]), min_size=12, max_size=12),
    last_unterminated=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=6),
)
def test_parser_matches_the_stream_reader_loop(
    lines: list[bytes], endings: list[bytes], last_unterminated: bool, cuts: list[int]
) -> None:
    data = b"".join(line + ending for line, ending in zip(lines, endings))
    if last_unterminated and lines:
        data = data[: -len(endings[len(lines) - 1])]
    points = sorted({min(cut, len(data)) for cut in cuts})
    chunks = [data[start:end] for start, end in zip([0, *points], [*points, len(data)])]
    assert _new_replies(chunks) == _old_replies(data)
