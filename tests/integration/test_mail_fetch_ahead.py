"""mail.fetch against Dovecot: a store that fails while the session fetches ahead
(`engine/kinds/_mail_fetch_ahead.py`, the batch behind it already being read) fails
that batch alone; the batches after it are stored, in UID order, and the next run
fetches exactly the messages that were not stored."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from xfer.mailbox_store.stores import MaildirStore
from tests.integration.test_mail_fetch import assert_same, imap_fill, job_yaml, local_messages, message
from tests.jobrun import job_named, run_job
from tests.servers.mail import MailServer, mail_server  # noqa: F401  (fixture)


def test_a_failed_store_fails_its_batch_alone(
    tmp_path: Path, mail_server: MailServer, monkeypatch: pytest.MonkeyPatch  # noqa: F811
) -> None:
    sent = [message("user1", n, tag="ahead") for n in range(20)]
    imap_fill(mail_server, "user1", "Ahead", sent)
    write = MaildirStore.write
    failed: list[list[str]] = []

    def write_failing_once(store: MaildirStore, batch: list[Any]) -> list[bytes]:
        if not failed and any(item.token.endswith("-7") for item in batch):  # the 4th batch of 2
            failed.append([item.token for item in batch])
            raise OSError(28, "No space left on device")
        return write(store, batch)

    monkeypatch.setattr(MaildirStore, "write", write_failing_once)
    text = f"defaults:\n  state: {tmp_path / 'state.db'}\n" + job_yaml(
        mail_server, [("ahead", "user1", "imap:Ahead", "maildir")]
    ).replace("batch: 7", "batch: 2")
    code, report, raw = run_job(tmp_path, text)
    assert code != 0, raw[:2000]
    assert job_named(report, "ahead")["status"] != "ok"
    assert report["totals"]["tasks_failed"] == 1, raw[:2000]
    local = tmp_path / "ahead" / "Ahead"
    names = sorted(os.listdir(local / "new"), key=lambda name: int(re.search(r"Q(\d+)\.", name).group(1)))
    uids = [int(name.rsplit("-", 1)[1]) for name in names]
    assert uids == sorted(uids) and len(uids) == 18  # every batch but the failed one, in order
    assert {f"-{uid}" for uid in uids}.isdisjoint({"-" + token.rsplit("-", 1)[1] for token in failed[0]})

    code, report, raw = run_job(tmp_path, text)  # the store works again
    assert code == 0, raw[:2000]
    assert job_named(report, "ahead")["summary"]["fetched"] == 2, raw[:2000]
    assert_same(local_messages(local, "maildir"), sent)
