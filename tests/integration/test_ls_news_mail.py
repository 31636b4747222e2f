"""`xfer ls` of news groups on INN (LIST ACTIVE with a wildcard) and of mailboxes on
Dovecot (IMAP folders with counts and sizes, POP3 count and size), credentials from a
--jobs file, a refused login as one line without the password."""

from __future__ import annotations

import imaplib
import json
from pathlib import Path
from typing import Any

import pytest

from xfer.cli import main
from xfer.ls.mail import folder_figures
from tests.integration.test_mail_fetch import imap_fill, imap_session, message, smtp_fill
from tests.servers.inn import make_article, start_news_server
from tests.servers.mail import MailServer, mail_server  # noqa: F401 - fixture

pytestmark = pytest.mark.timeout(180)


def ls_json(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    code = main(["ls", "--json", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def test_news_groups_with_a_wildcard(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    server = start_news_server(tmp_path)
    try:
        for group in ("xfer.ls.one", "xfer.ls.two", "xfer.other"):
            server.create_group(group)
        server.post_articles([make_article("xfer.ls.one", f"s{i}", "b") for i in range(5)])
        url = f"nntp://{server.host}:{server.reader_port}"
        rows = ls_json(capsys, f"{url}/xfer.ls.*")
        assert [(r["group"], r["low"], r["high"], r["count"]) for r in rows] == [
            ("xfer.ls.one", 1, 5, 5), ("xfer.ls.two", 1, 0, 0),
        ]
        assert {r["group"] for r in ls_json(capsys, url)} >= {"xfer.ls.one", "xfer.ls.two", "xfer.other"}
        assert main(["ls", f"{url}/xfer.ls.*"]) == 0
        table = capsys.readouterr().out.splitlines()
        assert table[0].split() == ["GROUP", "LOW", "HIGH", "COUNT", "FLAG"]
        assert table[1].split() == ["xfer.ls.one", "1", "5", "5", "y"]
    finally:
        server.stop()


def test_mail_folders_and_maildrop(mail_server: MailServer, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    user, password = next(iter(mail_server.users.items()))
    smtp_fill(mail_server, user, [message(user, n, size=200 * n) for n in range(3)])
    archived = [message(user, n, tag="a") for n in range(2)]
    imap_fill(mail_server, user, "Archive", archived)
    jobs = tmp_path / "hosts.yaml"
    jobs.write_text(f"hosts:\n  {mail_server.host}:\n    user: {user}\n    password: '{password}'\njobs: []\n")

    folders = {r["folder"]: r for r in ls_json(capsys, "--jobs", str(jobs), f"imap://{mail_server.host}:{mail_server.imap_port}")}
    assert set(folders) == {"INBOX", "Archive"}
    assert folders["Archive"]["messages"] == 2
    assert folders["Archive"]["size"] == sum(len(data.replace(b"\n", b"\r\n")) for data in archived)
    assert folders["INBOX"]["messages"] == 3

    (drop,) = ls_json(capsys, "--jobs", str(jobs), f"pop3://{mail_server.host}:{mail_server.pop3_port}")
    assert drop == {"mailbox": "INBOX", "messages": 3, "size": folders["INBOX"]["size"]}

    client = imap_session(mail_server, user)
    try:  # the capabilities after login (imaplib keeps the greeting's), as ImapConnector reads them
        client.capabilities = tuple(client.capability()[1][-1].decode().upper().split())
        assert "STATUS=SIZE" in client.capabilities
        with_status = folder_figures(client, "Archive")
        client.capabilities = tuple(c for c in client.capabilities if c != "STATUS=SIZE")
        assert folder_figures(client, "Archive") == with_status == (2, folders["Archive"]["size"])
    finally:
        client.logout()


def test_refused_login_is_one_line(mail_server: MailServer, capsys: pytest.CaptureFixture[str]) -> None:
    user, password = next(iter(mail_server.users.items()))
    wrong = "not-" + password
    for scheme, port in (("imap", mail_server.imap_port), ("pop3", mail_server.pop3_port)):
        code = main(["ls", f"{scheme}://{user}:{wrong}@{mail_server.host}:{port}"])
        out, err = capsys.readouterr()
        assert code == 1 and out == "" and len(err.splitlines()) == 1, err
        assert wrong not in err and password not in err
    with pytest.raises(imaplib.IMAP4.error):  # the server really refuses it
        client = imaplib.IMAP4(mail_server.host, mail_server.imap_port)
        try:
            client.login(user, wrong)
        finally:
            client.shutdown()
