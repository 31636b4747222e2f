"""No credentials in clear by default: to a server that is not on loopback and sets up
no TLS (none offered, or STARTTLS stripped), SMTP AUTH, POP3 USER/PASS and IMAP LOGIN
are refused before the password leaves (NNTP AUTHINFO too), with one line naming TLS and the opt-out;
`allow_plaintext_auth: true` in the host block sends them.

The server is the real Postfix + Dovecot fixture, listening on a test host in a
network namespace the test makes (tests/servers/netns.py); its submission port offers
AUTH without STARTTLS, Dovecot has `ssl = no`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from xfer.errors import PlaintextAuthRefused
from xfer.protocols.imap import ImapConnector
from xfer.protocols.nntp import NntpConnector
from xfer.protocols.pop3 import Pop3Connector
from xfer.spec import HostConfig
from xfer.urls import parse_url
from tests.jobrun import job_named, run_job
from tests.servers.common import wait_port
from tests.servers.inn import spawn_auth_reader, start_news_server
from tests.servers.mail import MailServer, start_mail_server
from tests.servers.netns import netns_host

PASSWORD = "secret1"


@pytest.fixture
def remote_mail(tmp_path: Path) -> Iterator[MailServer]:
    """Postfix + Dovecot on a non-loopback test host, no TLS, AUTH on submission."""
    with netns_host() as host:
        server = start_mail_server(tmp_path / "srv", users=1, auth=True, host=host.address, netns=host.netns)
        try:
            yield server
        finally:
            server.stop()


def logins(server: MailServer) -> str:
    """What the server logged about logins (SASL in Postfix, Dovecot's login lines)."""
    return "\n".join(line for line in server.log_tail(10_000).splitlines() if "sasl_username" in line or "Login:" in line)


def load_job(server: MailServer, hosts: str = "") -> str:
    return f"""
{hosts}
jobs:
  - name: load
    kind: mail.load
    smtp: smtp://user1:{PASSWORD}@{server.host}:{server.submission_port}
    envelope: {{from: user1@{server.domain}, to: user1@{server.domain}}}
    count: 2
    size: 1k
"""


def test_smtp_auth_without_tls_fails_the_job(remote_mail: MailServer, tmp_path: Path) -> None:
    code, report, raw = run_job(tmp_path, load_job(remote_mail))
    assert code == 1
    errors = " ".join(str(error) for error in job_named(report, "load")["errors"])
    assert "without TLS" in errors and "allow_plaintext_auth: true" in errors
    assert PASSWORD not in raw
    assert "sasl_username" not in logins(remote_mail)  # AUTH never reached the server


def test_smtp_auth_without_tls_allowed_by_host_block(remote_mail: MailServer, tmp_path: Path) -> None:
    hosts = f"hosts:\n  {remote_mail.host}: {{allow_plaintext_auth: true}}"
    code, report, _ = run_job(tmp_path, load_job(remote_mail, hosts))
    assert code == 0, job_named(report, "load")
    assert job_named(report, "load")["summary"]["accepted"] == 2
    assert "sasl_username=user1" in logins(remote_mail)


@pytest.mark.parametrize("protocol", ["pop3", "imap"])
def test_pop3_and_imap_login_without_tls_refused(remote_mail: MailServer, protocol: str) -> None:
    port = remote_mail.pop3_port if protocol == "pop3" else remote_mail.imap_port
    url = parse_url(f"{protocol}://user1:{PASSWORD}@{remote_mail.host}:{port}/")
    kind: Any = Pop3Connector if protocol == "pop3" else ImapConnector

    async def connect(host: HostConfig) -> None:
        conn = await kind(url, host).connect()
        await conn.close()

    with pytest.raises(PlaintextAuthRefused) as refused:
        asyncio.run(connect(HostConfig()))
    assert "allow_plaintext_auth" in str(refused.value) and PASSWORD not in str(refused.value)
    assert "Login:" not in logins(remote_mail)
    asyncio.run(connect(HostConfig(allow_plaintext_auth=True)))
    assert "Login: user=<user1" in logins(remote_mail)


def test_nntp_authinfo_without_tls_refused(tmp_path: Path) -> None:
    """INN's nnrpd on a non-loopback test host, AUTHINFO demanded, no certificate: it
    lists STARTTLS but fails it (580), so no TLS is set up and AUTHINFO must not follow."""
    with netns_host() as host:
        server = start_news_server(tmp_path / "inn", users={"reader": PASSWORD})
        try:
            spawn_auth_reader(server, host.address, 1119, host.netns)
            wait_port(1119, host=host.address)
            url = parse_url(f"nntp://reader:{PASSWORD}@{host.address}:1119/")

            async def connect(config: HostConfig) -> None:
                conn = await NntpConnector(url, config).connect()
                await conn.close()

            with pytest.raises(PlaintextAuthRefused) as refused:
                asyncio.run(connect(HostConfig()))
            assert "allow_plaintext_auth" in str(refused.value) and PASSWORD not in str(refused.value)
            asyncio.run(connect(HostConfig(allow_plaintext_auth=True)))
        finally:
            server.stop()
