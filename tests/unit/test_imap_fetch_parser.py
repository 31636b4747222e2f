"""`imap_fetch.FetchParser` on replies cut at every byte: literals that contain reply
syntax, items in any order, unsolicited responses, BYE and tagged refusals. (The same
reader against Dovecot: tests/integration/test_mail_fetch_reader.py.)"""

from __future__ import annotations

import imaplib

import pytest

from xfer.protocols.imap import _UID_SIZE_LINE, received_at
from xfer.protocols.imap_fetch import FetchParser, FetchResponse

TRICKY = b"Subject: x\r\n\r\nA1 OK fake\r\n)\r\n* 2 FETCH (UID 9 BODY[] {123}\r\n* BYE no\r\n"
REPLY = (
    b"* 1 FETCH (UID 7 RFC822.SIZE %d BODY[] {%d}\r\n%s)\r\n" % (len(TRICKY), len(TRICKY), TRICKY)
    + b"* 5 EXISTS\r\n"
    + b"* 2 FETCH (FLAGS (\\Seen) UID 8)\r\n"  # a flag update: no body
    + b"* 3 FETCH (BODY[] {0}\r\n UID 9 RFC822.SIZE 0)\r\n"  # body first, UID after it
    + b'* 4 FETCH (UID 10 BODY[]<4096> "")\r\n'  # past the end of a partial fetch
    + b'* 5 FETCH (UID 11 INTERNALDATE "01-Feb-2024 10:00:00 +0100" BODY[HEADER] {4}\r\nab\r\n)\r\n'
    + b"A7 OK Fetch completed.\r\n"
    + b"* 6 EXISTS\r\n"  # after the tagged reply: left for imaplib
)
EXPECTED = [
    FetchResponse(b"* 1 FETCH (UID 7 RFC822.SIZE %d BODY[] {%d} )" % (len(TRICKY), len(TRICKY)), TRICKY, 7),
    FetchResponse(b"* 2 FETCH (FLAGS (\\Seen) UID 8)", None, 8),
    FetchResponse(b"* 3 FETCH (BODY[] {0}  UID 9 RFC822.SIZE 0)", b"", 9),
    FetchResponse(b'* 4 FETCH (UID 10 BODY[]<4096> "")', b"", 10),
    FetchResponse(b'* 5 FETCH (UID 11 INTERNALDATE "01-Feb-2024 10:00:00 +0100" BODY[HEADER] {4} )', b"ab\r\n", 11),
]


def _parse(reply: bytes, cuts: list[int]) -> tuple[list[FetchResponse], FetchParser]:
    parser, out, last = FetchParser(b"A7"), [], 0
    for cut in [*cuts, len(reply)]:
        out += parser.feed(reply[last:cut])
        last = cut
    return out, parser


def test_whole_reply() -> None:
    out, parser = _parse(REPLY, [])
    assert out == EXPECTED
    assert parser.status == ("OK", "Fetch completed.")
    assert parser.rest == b"* 6 EXISTS\r\n"


@pytest.mark.parametrize("cut", range(1, len(REPLY)))
def test_reply_cut_anywhere(cut: int) -> None:
    out, parser = _parse(REPLY, [cut])
    assert out == EXPECTED
    assert parser.status == ("OK", "Fetch completed.")


def test_reply_byte_by_byte() -> None:
    out, parser = _parse(REPLY, list(range(1, len(REPLY))))
    assert out == EXPECTED
    assert parser.rest == b"* 6 EXISTS\r\n"


def test_large_literal_asks_for_the_rest() -> None:
    body = b"x" * (3 * 1024 * 1024)
    parser = FetchParser(b"A1")
    assert parser.feed(b"* 1 FETCH (UID 1 BODY[] {%d}\r\n" % len(body) + body[:1000]) == []
    assert parser.wanted == len(body) - 1000
    out = parser.feed(body[1000:] + b")\r\nA1 OK done\r\n")
    assert out == [FetchResponse(b"* 1 FETCH (UID 1 BODY[] {%d} )" % len(body), body, 1)]


def test_bye_aborts() -> None:
    with pytest.raises(imaplib.IMAP4.abort, match="BYE shutting down"):
        FetchParser(b"A1").feed(b"* 1 FETCH (UID 1 RFC822.SIZE 3)\r\n* BYE shutting down\r\n")


def test_tagged_refusal() -> None:
    parser = FetchParser(b"A1")
    assert parser.feed(b"A1 NO [SERVERBUG] oops\r\n") == []
    assert parser.status == ("NO", "[SERVERBUG] oops")


def test_internaldate() -> None:
    assert received_at(b'INTERNALDATE "01-Feb-2024 10:00:00 +0100"') == 1706778000.0
    assert received_at(b'INTERNALDATE " 1-Feb-2024 10:00:00 -0030"') == 1706783400.0
    assert received_at(b'INTERNALDATE "01-Foo-2024 10:00:00 +0100"') is None
    assert received_at(b"UID 1") is None


SIZES = (
    b"* 1 FETCH (UID 7 RFC822.SIZE 4052)\r\n"
    + b"* 2 FETCH (RFC822.SIZE 10 UID 8)\r\n"  # UID after the size
    + b"* 3 FETCH (FLAGS (\\Seen))\r\n"  # an update without UID
    + b"* 4 FETCH (UID 12 RFC822.SIZE 3)\r\n"
    + b'* 5 FETCH (UID 13 BODY[HEADER] "a\\"b")\r\n'  # a body section on one line: quoted
    + b"A9 OK done\r\n"
)


@pytest.mark.parametrize("cut", range(1, len(SIZES)))
def test_one_line_responses_cut_anywhere(cut: int) -> None:
    """A survey's run of one-line responses (taken a match each) gives what the line
    walk gives: UID wherever it stands, None without one, a quoted body unquoted."""
    parser = FetchParser(b"A9")
    out = parser.feed(SIZES[:cut]) + parser.feed(SIZES[cut:])
    assert out == [
        FetchResponse(b"* 1 FETCH (UID 7 RFC822.SIZE 4052)", None, 7),
        FetchResponse(b"* 2 FETCH (RFC822.SIZE 10 UID 8)", None, 8),
        FetchResponse(b"* 3 FETCH (FLAGS (\\Seen))", None, None),
        FetchResponse(b"* 4 FETCH (UID 12 RFC822.SIZE 3)", None, 12),
        FetchResponse(b'* 5 FETCH (UID 13 BODY[HEADER] "a\\"b")', b'a"b', 13),
    ]
    assert parser.status == ("OK", "done")


RUN = b"".join(b"* %d FETCH (UID %d RFC822.SIZE %d)\r\n" % (n, n + 100, n * 7) for n in range(1, 4))


@pytest.mark.parametrize("cut", range(1, len(RUN + SIZES)))
def test_runs_of_a_given_line_are_matched_not_parsed(cut: int) -> None:
    """With a line pattern (a size survey's), runs of such lines go to `matched` by one
    findall, cut anywhere; every other response comes out as the line walk gives it."""
    reply = RUN + SIZES
    parser = FetchParser(b"A9", _UID_SIZE_LINE)
    out = parser.feed(reply[:cut]) + parser.feed(reply[cut:])
    assert parser.matched == [(b"101", b"7"), (b"102", b"14"), (b"103", b"21"), (b"7", b"4052"), (b"12", b"3")]
    assert [response.uid for response in out] == [8, None, 13]
    assert parser.status == ("OK", "done")
