"""`xfer ls` refuses bad input before any connection: exit 2 and one line naming it."""

from __future__ import annotations

from pathlib import Path

import pytest

from xfer.cli import CORE_COMMANDS, main


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["http://example.org/"], "scheme must be one of"),
        (["--include", "*.c", "nntp://news.example.org/"], "apply to ftp:// and ftps:// URLs"),
        (["-R", "imap://me@mail.example.org"], "apply to ftp:// and ftps:// URLs"),
        (["--depth", "-1", "ftp://ftp.example.org/"], "--depth must be >= 0"),
        (["--exclude", "[z-a]", "ftp://ftp.example.org/"], "invalid pattern"),
        (["pop3://mail.example.org"], "needs a user"),
    ],
)
def test_bad_input_is_refused_before_connecting(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc to give a user
    assert main(["ls", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and message in err


def test_ls_needs_no_plugin_commands() -> None:
    assert "ls" in CORE_COMMANDS
