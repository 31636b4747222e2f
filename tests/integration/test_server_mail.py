"""Smoke test of the Postfix + Dovecot fixture: mail sent with aiosmtplib comes back
intact over POP3 and IMAP, TLS verifies against the fixture's CA (and only with it),
SMTP AUTH goes through Dovecot SASL, and two instances run side by side."""

from __future__ import annotations

import asyncio
import email
import imaplib
import poplib
import ssl
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import aiosmtplib
import pytest

from tests.servers.mail import (  # noqa: F401  (fixtures)
    MailServer,
    _alive,
    mail_server,
    mail_server_tls,
    start_mail_server,
)

SENDER = "sender@client.test"


def make_message(server: MailServer, user: str, n: int) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = SENDER
    msg["To"] = server.address(user)
    msg["Subject"] = f"smoke {n} for {user}"
    # LF line ends on purpose: the servers hand them back as CRLF.
    msg.set_content(f"Hello {user},\nthis is message {n}.\n\n-- \nxfer\n")
    return msg


def normalise_body(raw: bytes) -> tuple[str, str]:
    """(subject, body) with CRLF -> LF and trailing newlines dropped: poplib strips the
    final CRLF, IMAP returns CRLF where the sender wrote LF."""
    parsed = email.message_from_bytes(raw, policy=default_policy)
    body = parsed.get_content().replace("\r\n", "\n").rstrip("\n")
    return str(parsed["Subject"]), body


def expected(messages: list[EmailMessage], user_address: str) -> list[tuple[str, str]]:
    return sorted(
        (str(m["Subject"]), m.get_content().rstrip("\n"))
        for m in messages
        if m["To"] == user_address
    )


def fetch_pop3(client: poplib.POP3, server: MailServer, user: str) -> list[tuple[str, str]]:
    client.user(server.address(user))
    client.pass_(server.users[user])
    count, _size = client.stat()
    got = []
    for i in range(1, count + 1):
        _resp, lines, _octets = client.retr(i)
        got.append(normalise_body(b"\r\n".join(lines) + b"\r\n"))
    client.quit()
    return sorted(got)


def fetch_imap(client: imaplib.IMAP4, server: MailServer, user: str) -> list[tuple[str, str]]:
    # Bare local part on purpose: auth_default_realm adds the domain.
    client.login(user, server.users[user])
    client.select("INBOX", readonly=True)
    _typ, data = client.search(None, "ALL")
    got = []
    for num in data[0].split():
        _typ, parts = client.fetch(num, "(BODY.PEEK[])")
        got.append(normalise_body(parts[0][1]))
    client.logout()
    return sorted(got)


async def send_all(server: MailServer, messages: list[EmailMessage], **smtp_args) -> None:
    """All messages over one SMTP connection."""
    smtp = aiosmtplib.SMTP(hostname=server.host, timeout=20, **smtp_args)
    async with smtp:
        for msg in messages:
            errors, _reply = await smtp.send_message(msg)
            assert not errors


def test_send_20_and_read_back_by_pop3_and_imap(mail_server: MailServer) -> None:
    server = mail_server
    users = ["user1", "user2"]
    messages = [make_message(server, users[n % 2], n) for n in range(20)]
    asyncio.run(send_all(server, messages, port=server.smtp_port, start_tls=False))

    for user in users:
        server.wait_for_messages(user, 10)
        want = expected(messages, server.address(user))
        assert len(want) == 10
        pop = poplib.POP3(server.host, server.pop3_port, timeout=10)
        assert fetch_pop3(pop, server, user) == want
        imap = imaplib.IMAP4(server.host, server.imap_port, timeout=10)
        assert fetch_imap(imap, server, user) == want
    assert server.message_count("user3") == 0

    # Without tls the submission port still takes AUTH (plaintext, via Dovecot SASL).
    login = {"username": server.address("user3"), "password": server.users["user3"]}
    asyncio.run(send_all(server, [make_message(server, "user3", 99)],
                         port=server.submission_port, start_tls=False, **login))
    server.wait_for_messages("user3", 1)


def test_tls_verifies_against_ca_and_auth(mail_server_tls: MailServer) -> None:
    server = mail_server_tls
    assert server.ca_pem is not None and server.ca_pem.exists()
    for port in (server.submission_port, server.smtps_port, server.pop3s_port, server.imaps_port):
        assert port is not None
    ctx = server.ssl_context()
    user = "user1"
    login = {"username": server.address(user), "password": server.users[user]}
    messages = [make_message(server, user, n) for n in range(4)]

    # Submission: STARTTLS verified against the CA, then AUTH via Dovecot SASL.
    asyncio.run(
        send_all(server, messages[:2], port=server.submission_port, start_tls=True,
                 tls_context=ctx, **login)
    )
    # smtps: implicit TLS + AUTH.
    asyncio.run(
        send_all(server, messages[2:], port=server.smtps_port, use_tls=True,
                 tls_context=ctx, **login)
    )
    server.wait_for_messages(user, 4)
    want = expected(messages, server.address(user))

    assert fetch_pop3(poplib.POP3_SSL(server.host, server.pop3s_port, context=ctx, timeout=10),
                      server, user) == want
    assert fetch_imap(imaplib.IMAP4_SSL(server.host, server.imaps_port, ssl_context=ctx,
                                        timeout=10), server, user) == want
    pop = poplib.POP3(server.host, server.pop3_port, timeout=10)
    pop.stls(context=ctx)
    assert fetch_pop3(pop, server, user) == want
    imap = imaplib.IMAP4(server.host, server.imap_port, timeout=10)
    imap.starttls(ssl_context=ctx)
    assert fetch_imap(imap, server, user) == want

    # Without the CA, every TLS handshake fails verification.
    plain_ctx = ssl.create_default_context()
    with pytest.raises(ssl.SSLCertVerificationError):
        imaplib.IMAP4_SSL(server.host, server.imaps_port, ssl_context=plain_ctx, timeout=10)
    with pytest.raises(ssl.SSLCertVerificationError):
        poplib.POP3_SSL(server.host, server.pop3s_port, context=plain_ctx, timeout=10)
    with pytest.raises(aiosmtplib.SMTPException):
        asyncio.run(send_all(server, messages[:1], port=server.smtps_port, use_tls=True,
                             tls_context=plain_ctx, **login))

    # AUTH is checked: a wrong password fails, and no AUTH means no relay on submission.
    with pytest.raises(aiosmtplib.SMTPAuthenticationError):
        asyncio.run(send_all(server, messages[:1], port=server.submission_port, start_tls=True,
                             tls_context=ctx, username=login["username"], password="wrong"))
    with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
        asyncio.run(send_all(server, messages[:1], port=server.submission_port, start_tls=True,
                             tls_context=ctx))
    assert server.message_count(user) == 4


def test_two_instances_side_by_side(tmp_path: Path) -> None:
    a = start_mail_server(tmp_path / "a", users={"alice": "pw-a"})
    try:
        b = start_mail_server(tmp_path / "b", users={"bob@example.test": "pw-b"})
        try:
            assert len({a.smtp_port, a.imap_port, b.smtp_port, b.imap_port}) == 4
            for server, user in ((a, "alice"), (b, "bob")):
                msg = make_message(server, user, 0)
                asyncio.run(send_all(server, [msg], port=server.smtp_port, start_tls=False))
                server.wait_for_messages(user, 1)
                got = fetch_imap(imaplib.IMAP4(server.host, server.imap_port, timeout=10),
                                 server, user)
                assert got == expected([msg], server.address(user))
            # Each instance knows only its own users.
            with pytest.raises(aiosmtplib.SMTPRecipientsRefused):
                asyncio.run(send_all(a, [make_message(a, "bob", 1)], port=a.smtp_port,
                                     start_tls=False))
        finally:
            pids = b.pids()
            assert len(pids) >= 2  # Postfix master + Dovecot master at least
            b.stop()
            assert not [p for p in pids if _alive(p)]
            assert not b.root.exists()
            assert (b.logs_dir / "postfix.log").exists()
            assert b.logs_dir == tmp_path / "b" / "mail-logs"
    finally:
        a.stop()
