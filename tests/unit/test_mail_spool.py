"""A spool file written chunk by chunk holds exactly what `to_lf` makes of the whole
message, and its header is the message's header block, however the chunks fall
(a CR at a chunk's end, CRLF split across two chunks)."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from xfer.mailbox_store.spool import Spool
from xfer.mailbox_store.stores import header_block, to_lf

_PIECES = st.lists(st.sampled_from([b"a", b"\r", b"\n", b"\r\n", b"From x\r\n", b"\r\n\r\n", b"H: v"]), max_size=60)


@settings(max_examples=300, deadline=None)
@given(pieces=_PIECES, cuts=st.lists(st.integers(1, 9), min_size=1, max_size=60))
def test_spool_equals_to_lf_of_the_whole(tmp_path_factory, pieces: list[bytes], cuts: list[int]) -> None:  # type: ignore[no-untyped-def]
    raw = b"".join(pieces)
    path = Path(tmp_path_factory.mktemp("spool")) / "message"
    spool = Spool(str(path))
    start, turn = 0, 0
    while start < len(raw):
        size = cuts[turn % len(cuts)]
        spool.write(raw[start : start + size])
        start, turn = start + size, turn + 1
    spool.finish(None)
    assert path.read_bytes() == to_lf(raw)
    assert header_block(spool.header) == header_block(raw)


def test_discard_leaves_nothing(tmp_path: Path) -> None:
    spool = Spool(str(tmp_path / "m"))
    spool.write(b"Subject: x\r\n\r\nbody")
    spool.discard()
    assert not list(tmp_path.iterdir())
