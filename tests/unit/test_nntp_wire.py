"""Multi-line replies read in blocks: the same lines whatever the reads return.

The reads are scripted here (a parser test); tests/integration/test_nntp_scan.py reads
the same way from INN."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from xfer.protocols.nntp import _Wire

#: Two pipelined replies: dot-stuffed lines (one first), then an empty reply.
STREAM = b"224 over\r\n..first\r\n1\tfoo\r\n..dot\r\n..\r\nplain\r\n.\r\n224 empty\r\n.\r\n"
LINES = b".first\r\n1\tfoo\r\n.dot\r\n.\r\nplain\r\n"


class Reads:
    """A socket file whose read1 returns the given pieces, one per call."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    def read1(self, size: int) -> bytes:
        return self.pieces.pop(0) if self.pieces else b""


def wire(pieces: list[bytes]) -> _Wire:
    return _Wire(SimpleNamespace(file=Reads(pieces), sock=None))  # type: ignore[arg-type]


def cuts() -> list[list[bytes]]:
    """The stream in two reads cut at every byte, and one byte a read."""
    return [[STREAM[:at], STREAM[at:]] for at in range(1, len(STREAM))] + [[bytes([b]) for b in STREAM]]


@pytest.mark.parametrize("least", [None, 1, 8])
def test_pieces_are_whole_unstuffed_lines_wherever_reads_end(least: int | None) -> None:
    for reads in cuts():
        reader = wire(reads)
        assert reader.status() == "224 over"
        pieces = list(reader.pieces(least))
        assert b"".join(pieces) == LINES, reads
        assert all(piece.endswith(b"\r\n") for piece in pieces)
        if least is None:
            assert len(pieces) == 1
        assert reader.status() == "224 empty"
        assert list(reader.pieces(least)) == []
        assert reader.drained()


def test_block_is_the_whole_reply() -> None:
    reader = wire([STREAM])
    reader.status()
    assert reader.block() == LINES
    reader.status()
    assert reader.block() == b""


def test_a_closed_connection_mid_reply_is_an_error() -> None:
    reader = wire([STREAM[:30]])
    reader.status()
    with pytest.raises(EOFError):
        list(reader.pieces(1))
