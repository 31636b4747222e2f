"""mail.fetch with an IMAP connection reset in the middle of a batch's FETCH while the
batches behind it are already queued on the session (`engine/kinds/_mail_fetch_ahead.py`
keeps several in flight). Real Dovecot behind tests/faults/proxy.py, which resets the
connection a few kB after it has seen the client ask for message bodies. After
it every message is stored exactly once, in UID order, and a re-run fetches none."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.faults.proxy import Cut, FaultProxy
from tests.integration.test_mail_fetch import assert_same, imap_fill, job_yaml, local_messages, message
from tests.jobrun import job_named, run_job
from tests.servers.mail import MailServer, mail_server  # noqa: F401  (fixture)

pytestmark = pytest.mark.timeout(240)


@pytest.mark.parametrize("fmt", ["maildir", "mbox"])
def test_reset_mid_fetch_ahead_stores_every_message_once(tmp_path: Path, mail_server: MailServer, fmt: str) -> None:  # noqa: F811
    folder = f"Cut{fmt}"
    sent = [message("user1", n, size=1500, tag=f"cut{fmt}") for n in range(40)]
    imap_fill(mail_server, "user1", folder, sent)
    with FaultProxy(mail_server.imap_port) as proxy:
        proxy.faults.append(Cut(after=12_000, trigger=b"BODY.PEEK[]"))  # in the 2nd batch, the 3rd queued
        text = (
            f"defaults:\n  state: {tmp_path / 'state.db'}\n  retry_backoff: 0.05\n"
            + job_yaml(mail_server, [("cut", "user1", f"imap:{folder}", fmt)])
            .replace(f":{mail_server.imap_port}/", f":{proxy.port}/")
            .replace("batch: 7", "batch: 4")
        )
        code, report, raw = run_job(tmp_path, text)
        cuts = proxy.stats.cuts
        again = run_job(tmp_path, text)  # the cuts are spent
    assert cuts == 1, raw[:2000]
    assert code == 0, raw[:2000]
    job = job_named(report, "cut")
    assert job["summary"]["fetched"] == len(sent), raw[:2000]
    local = tmp_path / "cut" / (folder if fmt == "maildir" else f"{folder}.mbox")
    stored = local_messages(local, fmt)
    assert_same(stored, sent)
    numbers = [int(re.search(rb"Subject: cut\w+ (\d+)", data).group(1)) for data in stored]
    if fmt == "mbox":
        assert numbers == sorted(numbers)  # appended in UID order
    else:
        names = sorted(os.listdir(local / "new"), key=lambda name: int(re.search(r"Q(\d+)\.", name).group(1)))
        uids = [int(name.rsplit("-", 1)[1]) for name in names]
        assert uids == sorted(uids)

    code, report, raw = again
    assert code == 0, raw[:2000]
    assert job_named(report, "cut")["summary"]["fetched"] == 0, raw[:2000]
