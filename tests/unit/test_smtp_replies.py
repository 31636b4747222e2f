"""parse_replies (engine/protocols/_pipeline.py), the reader of pipelined SMTP replies:
however the server's bytes are cut into reads, the same replies come out, in order,
multi-line ones joined as aiosmtplib joins them, and a partial reply waits for its rest."""

from __future__ import annotations

import random

import aiosmtplib
import pytest

from xfer.protocols._pipeline import parse_replies

STREAM = (
    b"250 2.0.0 Ok: queued as 4F1\r\n250 2.1.0 Ok\r\n"
    b"550-5.1.1 <nobody@x.test>: Recipient address rejected:\r\n550 5.1.1 User unknown\r\n"
    b"354 End data with <CR><LF>.<CR><LF>\n"  # a bare LF ends a line too
    b"221 2.0.0 Bye\r\n"
)
WANT = [
    (250, "2.0.0 Ok: queued as 4F1"),
    (250, "2.1.0 Ok"),
    (550, "5.1.1 <nobody@x.test>: Recipient address rejected:\n5.1.1 User unknown"),
    (354, "End data with <CR><LF>.<CR><LF>"),
    (221, "2.0.0 Bye"),
]


def read_in_pieces(cuts: list[int]) -> tuple[list[tuple[int, str]], bytes]:
    buffer, got, start = bytearray(), [], 0
    for cut in [*cuts, len(STREAM)]:
        buffer += STREAM[start:cut]
        start = cut
        got += [(reply.code, reply.message) for reply in parse_replies(buffer)]
    return got, bytes(buffer)


def test_every_cut_of_the_stream_gives_the_same_replies() -> None:
    rng = random.Random(7)
    for _ in range(500):
        cuts = sorted(rng.sample(range(1, len(STREAM)), rng.randint(0, 8)))
        assert read_in_pieces(cuts) == (WANT, b"")


def test_a_partial_reply_stays_in_the_buffer() -> None:
    buffer = bytearray(b"250 Ok\r\n550-first line\r\n550 sec")
    assert [reply.code for reply in parse_replies(buffer)] == [250]
    assert buffer == bytearray(b"550-first line\r\n550 sec")


def test_a_line_without_a_code_is_an_error() -> None:
    with pytest.raises(aiosmtplib.SMTPResponseException, match="Malformed"):
        parse_replies(bytearray(b"25x oops\r\n"))


@pytest.mark.parametrize("line", ["٢٥٠ Ok\r\n".encode(), b" 25 Ok\r\n", b"2_5 Ok\r\n", b"\r\n"])
def test_a_code_is_three_ascii_digits(line: bytes) -> None:
    with pytest.raises(aiosmtplib.SMTPResponseException, match="Malformed"):
        parse_replies(bytearray(b"250 Ok\r\n" + line))


def test_the_first_lines_of_a_reply_still_coming_stay_after_complete_replies() -> None:
    buffer = bytearray(b"250 Ok\r\n354 Go on\r\n550-first\r\n550-second\r\n")
    assert [(reply.code, reply.message) for reply in parse_replies(buffer)] == [(250, "Ok"), (354, "Go on")]
    assert buffer == bytearray(b"550-first\r\n550-second\r\n")
    buffer += b"550 third\r\n"
    assert [(reply.code, reply.message) for reply in parse_replies(buffer)] == [(550, "first\nsecond\nthird")]
    assert buffer == bytearray()
