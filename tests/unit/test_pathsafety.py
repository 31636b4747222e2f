"""Safe placement of server-supplied names under a destination."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xfer.errors import UnsafePathError
from xfer.pathsafety import check_name, is_inside, open_new, safe_mkdir, safe_relative, safe_target

HOSTILE = ["..", ".", "", "../escape", "/etc/passwd", "a/../../b", "nul\0x", "new\nline", "cr\rx", "back\\..\\x", "tab\tx"]


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_names_are_refused(name: str) -> None:
    assert check_name(name) is not None


@pytest.mark.parametrize("name", ["a.txt", "..hidden", "x..y", "spaces are fine", "ünïcödé", "-dash"])
def test_ordinary_names_pass(name: str) -> None:
    assert check_name(name) is None


@pytest.mark.parametrize("path", ["../x", "/abs", "a/../../b", "a//b", "a/./b", "a\\..\\b"])
def test_relative_paths_with_climbing_parts_are_refused(path: str) -> None:
    with pytest.raises(UnsafePathError):
        safe_relative(path)


def test_error_message_shows_the_name_escaped() -> None:
    with pytest.raises(UnsafePathError) as caught:
        safe_relative(["ok", "bad\nFAKE LOG LINE"])
    assert "\n" not in str(caught.value)


def test_safe_target_refuses_a_symlinked_parent_leaving_root(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    with pytest.raises(UnsafePathError):
        safe_target(root, "link/file.txt")
    with pytest.raises(UnsafePathError):
        safe_target(root, "link/deeper/file.txt", make_parents=True)
    assert list(outside.iterdir()) == []


def test_safe_target_allows_a_symlink_inside_root(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "real").mkdir(parents=True)
    (root / "alias").symlink_to(root / "real")
    assert safe_target(root, "alias/f.txt") == root / "alias/f.txt"


def test_safe_mkdir_creates_nested_dirs(tmp_path: Path) -> None:
    made = safe_mkdir(tmp_path, "a/b/c")
    assert made.is_dir() and is_inside(tmp_path, made)


def test_open_new_does_not_follow_a_symlink(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("keep")
    (tmp_path / "x.part").symlink_to(victim)
    with pytest.raises(UnsafePathError):
        open_new(tmp_path / "x.part")
    assert victim.read_text() == "keep"
    fd = open_new(tmp_path / "fresh.part")
    os.close(fd)


@given(st.lists(st.text(min_size=0, max_size=8), min_size=1, max_size=4))
def test_whatever_is_accepted_stays_inside(parts: list[str]) -> None:
    root = Path("/srv/dest")
    try:
        relative = safe_relative(parts)
    except UnsafePathError:
        return
    joined = os.path.normpath(os.path.join(root, *relative.parts))
    assert joined.startswith(str(root) + "/")
