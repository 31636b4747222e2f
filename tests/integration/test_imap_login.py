"""IMAP logins against real Dovecot take the capabilities the server announced (the
greeting's and the LOGIN reply's `[CAPABILITY ...]` codes) instead of asking again,
and after STARTTLS ask again over TLS: what came before TLS is not trusted."""

from __future__ import annotations

from xfer.protocols.imap import ImapConnector
from xfer.spec import HostConfig
from xfer.urls import parse_url
from tests.servers.mail import MailServer, mail_server, mail_server_tls  # noqa: F401  (fixtures)


def _sent(server: MailServer, port: int, host: HostConfig, **options: object) -> tuple[int, tuple[str, ...]]:
    """Commands sent by a connector's open (LOGIN, SELECT...) and the capabilities it kept."""
    url = parse_url(f"imap://{server.address('user1')}:{server.users['user1']}@127.0.0.1:{port}/INBOX")
    client = ImapConnector(url, host, **options).open()  # type: ignore[arg-type]
    try:
        return client.tagnum, client.capabilities  # type: ignore[attr-defined]
    finally:
        client.logout()


def test_a_login_asks_for_no_capabilities_the_server_announced(mail_server: MailServer) -> None:  # noqa: F811
    commands, capabilities = _sent(mail_server, mail_server.imap_port, HostConfig())
    assert commands == 2  # LOGIN and SELECT; no CAPABILITY before or after LOGIN
    assert "UIDPLUS" in capabilities  # announced after login only: the later list was kept


def test_after_starttls_capabilities_are_asked_for_again(mail_server_tls: MailServer) -> None:  # noqa: F811
    server = mail_server_tls
    commands, capabilities = _sent(server, server.imap_port, HostConfig(ca_file=server.ca_pem), starttls=True)
    assert commands == 4  # STARTTLS, CAPABILITY over TLS, LOGIN, SELECT
    assert "STARTTLS" not in capabilities and "UIDPLUS" in capabilities
