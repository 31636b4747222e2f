"""`share: I/N` (engine/kinds/_tree_share.py): the shares of a tree cover every path
exactly once, and a bad share is a clear error in the job file."""

from __future__ import annotations

import pytest

import xfer
from xfer.kinds._pathfilter import PathFilter
from xfer.kinds._tree_share import SharedFilter, parse_share

NAMES = ["a", "b", "src", "doc", "été", "x y", "1", "2", "3", "4"]


@pytest.mark.parametrize("parts", [1, 2, 3, 5])
def test_shares_cover_every_path_once(parts: int) -> None:
    shares = [SharedFilter(PathFilter(), (index, parts)) for index in range(1, parts + 1)]
    for name in NAMES:
        assert sum(share.walk_dir(name) for share in shares) == 1
        assert sum(share.wants_file(name) for share in shares) == 1  # a top-level file
        owner = next(share for share in shares if share.walk_dir(name))
        assert owner.walk_dir(f"{name}/deeper") and owner.wants_file(f"{name}/deeper/file")
    assert shares[0].wants_file("top.txt") and not any(share.wants_file("top.txt") for share in shares[1:])


def test_patterns_still_apply_inside_a_share() -> None:
    share = SharedFilter(PathFilter(exclude=["*.log"]), (1, 1))
    assert share.wants_file("a/b.txt") and not share.wants_file("a/b.log")


@pytest.mark.parametrize("text", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_a_bad_share_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_share(text)
    with pytest.raises(xfer.SpecError, match="share"):
        xfer.load({"jobs": [{"name": "m", "kind": "ftp.mirror", "remote": "ftp://h/", "local": "o", "share": text}]})


def test_a_share_cannot_archive() -> None:
    with pytest.raises(xfer.SpecError, match="archive"):
        xfer.load({"jobs": [{"name": "m", "kind": "ftp.mirror", "remote": "ftp://h/", "local": "o",
                             "share": "1/2", "archive": "zip"}]})
