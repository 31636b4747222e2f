"""A pooled session is lent only to a job that logs in the same way: same user AND
same password. A job with a wrong password must fail its login, not borrow a session
another job opened with the right one (found when a mail.load test passed by timing)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from xfer.protocols.ftp import FtpConnector, FtpSettings
from xfer.protocols.imap import ImapConnector
from xfer.protocols.nntp import NntpConnector
from xfer.protocols.pop3 import Pop3Connector
from xfer.protocols.smtp import SmtpConnector
from xfer.spec import HostConfig
from xfer.urls import parse_url

CONNECTORS: dict[str, Callable[[Any], Any]] = {
    "ftp": lambda url: FtpConnector(url, FtpSettings()),
    "imap": lambda url: ImapConnector(url, HostConfig()),
    "nntp": lambda url: NntpConnector(url),
    "pop3": lambda url: Pop3Connector(url, HostConfig()),
    "smtp": lambda url: SmtpConnector(url, HostConfig()),
}


@pytest.mark.parametrize("scheme", sorted(CONNECTORS))
def test_identity_includes_the_password_but_never_shows_it(scheme: str) -> None:
    make = CONNECTORS[scheme]
    right = make(parse_url(f"{scheme}://alice:right-password@127.0.0.1:2000/"))
    again = make(parse_url(f"{scheme}://alice:right-password@127.0.0.1:2000/"))
    wrong = make(parse_url(f"{scheme}://alice:wrong-password@127.0.0.1:2000/"))
    other_user = make(parse_url(f"{scheme}://bob:right-password@127.0.0.1:2000/"))
    assert right.identity == again.identity
    assert right.identity != wrong.identity
    assert right.identity != other_user.identity
    assert "right-password" not in repr(right.identity) + repr(right)
