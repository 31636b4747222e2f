"""`mail inspect` on mail nobody here wrote: SpamAssassin's samples (Debian package
`spamassassin`, installed by .ci/install-servers.sh) and CPython's e-mail test data
(the `test` package of this Python). Figures per rule: docs/INSPECT.md."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

from xfer.inspect.message import inspect_message

SPAMASSASSIN = Path("/usr/share/doc/spamassassin/examples")


def _cpython_data() -> Path | None:
    spec = importlib.util.find_spec("test")
    for root in list(spec.submodule_search_locations or []) if spec else []:
        if (Path(root) / "test_email" / "data").is_dir():
            return Path(root) / "test_email" / "data"
    for path in Path("/usr/lib").glob("python3*/test/test_email/data"):
        return path
    return None


def _read(path: Path | None, why: str) -> bytes:
    if path is None or not path.is_file():
        pytest.skip(why)
    return path.read_bytes()


def _rules(name: str, data: bytes) -> set[str]:
    return {signal.rule for signal in inspect_message(name, data).signals}


def test_spamassassin_ham_raises_nothing() -> None:
    """Its Message-ID ends in the sender's IP address (`<...@[208.192.102.193]>`, as
    Eudora and Mac mail clients wrote them): that is no organization to compare."""
    data = _read(SPAMASSASSIN / "sample-nonspam.txt", "Debian package spamassassin is not installed")
    assert _rules("sample-nonspam.txt", data) == set()


def test_ip_literal_message_id_is_not_compared_with_the_sender() -> None:
    data = _cpython_data()
    raw = _read(data / "msg_22.txt" if data else None, "CPython's test package (test_email/data) is not installed")
    assert "message-id-domain" not in _rules("msg_22.txt", raw)


def test_real_domain_message_id_in_another_organization_still_counts() -> None:
    data = _cpython_data()
    raw = _read(data / "msg_01.txt" if data else None, "CPython's test package (test_email/data) is not installed")
    assert "message-id-domain" in _rules("msg_01.txt", raw)  # aaa.zzz.org vs ddd.com: a real name
