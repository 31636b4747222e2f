"""Start-up weight of `mail.fetch` over IMAP into a Maildir (issue 15): the stdlib
`mailbox` (mbox only), the `email` package (attachments and POP3 only) and poplib are
imported when a job needs them, not by every run (~15-20 ms of a 10,000-message
fetch's ~0.6 s)."""

from __future__ import annotations

import subprocess
import sys

#: Modules an IMAP-to-Maildir fetch has no use for.
UNWANTED = ("mailbox", "email", "poplib", "xfer.protocols.pop3", "xfer.mailbox_store.attachments")


def test_the_imap_maildir_path_imports_no_unused_weight() -> None:
    code = (
        "import sys, xfer.kinds.mail_fetch, xfer.mailbox_store.stores;"
        f"print(' '.join(m for m in {UNWANTED!r} if m in sys.modules))"
    )
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == []
