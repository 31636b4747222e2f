"""mail.fetch against Dovecot: one memory budget for the whole run, whatever the
number of accounts and folders (fetched-and-not-stored bytes never exceed it)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from xfer.kinds import mail_fetch
from xfer.mailbox_store import budget
from xfer.protocols.imap import ImapConnection
from tests.integration.test_mail_fetch import assert_same, imap_fill, job_yaml, local_messages, message
from tests.jobrun import job_named, run_job
from tests.servers.mail import MailServer, mail_server  # noqa: F401  (fixture)

LIMIT = 300_000  # two batches of 7 messages below: far under 3 accounts x AHEAD batches


class Held:
    """Bytes fetched and not yet stored, seen from outside: added when a FETCH returns,
    taken off when the folder stores them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.now = self.peak = 0
        fetch, save = ImapConnection.fetch_messages, mail_fetch.LocalFolder.save

        async def fetch_messages(conn: ImapConnection, uids: Any, *then: Any) -> Any:
            fetched = await fetch(conn, uids, *then)
            self.now += sum(len(item.raw) for item in fetched)
            self.peak = max(self.peak, self.now)
            return fetched

        async def store(folder: Any, batch: list[Any], *beside: Any) -> tuple[int, int]:
            try:
                return await save(folder, batch, *beside)
            finally:
                self.now -= sum(len(incoming.raw) for incoming, _ in batch)

        monkeypatch.setattr(ImapConnection, "fetch_messages", fetch_messages)
        monkeypatch.setattr(mail_fetch.LocalFolder, "save", store)


def test_three_accounts_share_one_budget(tmp_path: Path, mail_server: MailServer, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    sent = {}
    for user in ("user1", "user2", "user3"):
        sent[user] = [message(user, n, size=20_000) for n in range(40)]
        imap_fill(mail_server, user, "INBOX", sent[user], create=False)
    monkeypatch.setattr(budget, "FETCH_MEMORY", LIMIT, raising=False)
    held = Held(monkeypatch)
    jobs = [(f"a{i}", user, "imap:INBOX", "maildir") for i, user in enumerate(sent)]
    text = f"defaults:\n  state: {tmp_path / 'state.db'}\n" + job_yaml(mail_server, jobs)
    code, report, _ = run_job(tmp_path, text, "-P", "1")  # watched in this process
    assert code == 0, report
    for i, user in enumerate(sent):
        assert job_named(report, f"a{i}")["status"] == "ok"
        assert_same(local_messages(tmp_path / f"a{i}" / "INBOX", "maildir"), sent[user])
    assert 0 < held.peak <= LIMIT, held.peak
