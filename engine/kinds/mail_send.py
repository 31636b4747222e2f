"""`mail.send`: send real messages over SMTP — To/Cc/Bcc, a text body with an optional
HTML alternative, files as attachments — one message, or one per row of a CSV file
(mail merge, `$name` fields in subject, bodies and headers).

Before the first message goes, everything it needs is read and checked: bodies from
files, attachments, and every row of the merge file; a missing file or a bad row
stops the job with one line naming it, and nothing is sent. Then each message is one
item on the job's pooled SMTP sessions (the same connector, TLS and AUTH rules as the
other mail kinds). The report gets a note per recipient: `accepted` (with the
server's reply to the message), `refused` (the server's code: RCPT refused, or the
whole message refused) or `failed` (no reply: connection, TLS). Recipients refused
with a 4xx are retried alone (the job's `retries`); one refused for good fails its
message, so the exit code tells, while the message still goes to the others. Under
`--dry-run` nothing connects: each message is written as an `.eml` file (temporary
name, then renamed) into `dry_run_dir`.

Example::

    - name: invoices
      kind: mail.send
      smtp: smtp://mail.example.org:587
      starttls: true
      from: "Billing <billing@example.org>"
      bcc: archive@example.org
      merge: customers.csv            # columns: to, name, invoice
      subject: "Invoice $invoice"
      text_file: invoice.txt          # "Dear $name, ..."
      attachments: [terms.pdf]
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xfer.errors import PermanentError, TransientError, describe
from xfer.job import Job, Task, TaskContext
from xfer.mail import merge
from xfer.mail.compose import Draft, Outgoing, addresses, attachment, compose, envelope, new_message_id, placeholders
from xfer.mail.sending import smtp_connector
from xfer.protocols.smtp import SmtpConnection, SmtpConnector, smtp_code
from xfer.urls import Url

if TYPE_CHECKING:
    from xfer.kinds._spec_mail_send import MailSendSpec
    from xfer.report import JobReport

#: Per-recipient outcomes, the `event` of their report notes.
ACCEPTED, REFUSED, FAILED = "accepted", "refused", "failed"


class _Message(Task[Any]):
    """One message of the job: its merge fields, its To (a merge row's) and a
    Message-ID fixed when planned, so a retry sends the same message."""

    def __init__(self, job: MailSend, index: int, fields: Mapping[str, str], to: list[str] | None) -> None:
        self.job, self.index, self.fields, self.to = job, index, fields, to
        self.message_id = new_message_id(job.draft.sender)

    @property
    def label(self) -> str:
        return f"message {self.index}"

    def outgoing(self) -> Outgoing:
        return compose(self.job.draft, self.fields, self.message_id, self.to)


class SendMessage(_Message):
    """Sends one message on a pooled SMTP session and notes each recipient's final
    outcome once. Recipients refused with a 4xx (greylisting, a full mailbox) are
    retried alone, as the scheduler retries a transient error: those accepted are
    never sent the message twice."""

    def __init__(self, job: MailSend, index: int, fields: Mapping[str, str], to: list[str] | None) -> None:
        super().__init__(job, index, fields, to)
        self.connector = job.connector
        #: Recipients still to send to, those refused for good (5xx), and the 4xx code
        #: each deferred one was last refused with.
        self.pending = envelope(job.draft, to)
        self.refused: dict[str, int] = {}
        self.deferred: dict[str, int] = {}
        self.deferral: TransientError | None = None

    async def run(self, conn: SmtpConnection | None, ctx: TaskContext) -> dict[str, Any] | None:
        assert conn is not None
        message, job = self.outgoing(), self.job
        result = await conn.send(message.sender, self.pending, message.data)
        ctx.progress(len(message.data))
        if len(self.pending) + len(self.refused) == len(message.recipients):  # its first acceptance
            job.sent += 1
        reply = f"{result.code} {result.message}".strip()
        self.deferred = {address: code for address, code in result.refused.items() if code < 500}
        for address in self.pending:
            code = result.refused.get(address)
            if code is None:
                job.note(self, ACCEPTED, address, result.code, reply)
            elif code >= 500:
                self.refused[address] = code
                job.note(self, REFUSED, address, code, None)
        self.pending = list(self.deferred)
        if self.deferred:
            self.deferral = TransientError(f"sent; deferred (4xx), retried alone: {_codes(self.deferred)}")
            raise self.deferral
        if self.refused:
            count = f"{len(self.refused)} of {len(message.recipients)}"
            raise PermanentError(f"sent, but {count} recipients refused: {_codes(self.refused)}")
        return {"message_id": self.message_id, "recipients": len(message.recipients), "reply": reply}

    def failed(self, error: Exception) -> dict[str, Any] | None:
        """Recipients not yet accepted share the last attempt's error (or their 4xx)."""
        for address in self.pending:
            code = self.deferred[address] if error is self.deferral else smtp_code(error)
            self.job.note(self, FAILED if code is None else REFUSED, address, code, describe(error))
        raise error


def _codes(refused: dict[str, int]) -> str:
    return ", ".join(f"{address} ({code})" for address, code in refused.items())


class WriteDraft(_Message):
    """`--dry-run`: the composed message as an `.eml` file instead of a send."""

    async def run(self, conn: None, ctx: TaskContext) -> dict[str, Any] | None:
        message = self.outgoing()
        path = self.job.outbox / f"message-{self.index:06d}.eml"
        await asyncio.to_thread(_write_atomically, path, message.data)
        ctx.progress(len(message.data))
        return {"eml": str(path), "message_id": self.message_id, "recipients": message.recipients}


class MailSend(Job):
    kind = "mail.send"
    unit = "msg"
    spec: MailSendSpec

    def __init__(self, spec: Any, ctx: Any) -> None:
        super().__init__(spec, ctx)
        self.concurrency = spec.concurrency
        self.draft: Draft = None  # type: ignore[assignment]  # read in `plan`, before any item
        self.outbox = ctx.resolve(spec.dry_run_dir or f"{spec.name}-outbox")
        self.sent = 0
        self.outcomes = {ACCEPTED: 0, REFUSED: 0, FAILED: 0}

    @cached_property
    def connector(self) -> SmtpConnector:
        """Made on first use (not for `xfer plan`, nor under --dry-run)."""
        return smtp_connector(self.ctx.file, self.spec.smtp, self.spec.starttls, self.spec.command_timeout)

    def endpoints(self) -> list[Url]:
        return [self.spec.smtp]

    def note(self, task: _Message, outcome: str, address: str, code: int | None, reply: str | None) -> None:
        """One recipient's outcome, as a report note."""
        self.outcomes[outcome] += 1
        data = {"event": outcome, "message": task.label, "message_id": task.message_id, "address": address, "code": code}
        self.ctx.emit("job.note", data={**data, **({"reply": reply} if reply else {})})

    async def plan(self) -> AsyncIterator[Task[Any]]:
        spec = self.spec
        self.draft = await asyncio.to_thread(read_draft, spec, self.ctx.resolve)
        if spec.merge is None:
            messages: Iterable[dict[str, str]] = [{}]
        else:
            path = self.ctx.resolve(spec.merge)
            await asyncio.to_thread(merge.check, path, self.draft.fields_used(), self.draft.header_fields())
            messages = (fields for _line, fields in merge.rows(path))
        if self.ctx.dry_run:
            self.outbox.mkdir(parents=True, exist_ok=True)
        make = WriteDraft if self.ctx.dry_run else SendMessage
        for index, fields in enumerate(messages, 1):
            yield make(self, index, fields, addresses(fields[merge.TO]) if spec.merge is not None else None)

    def summary(self) -> dict[str, Any]:
        figures: dict[str, Any] = {"sent": self.sent, "recipients": dict(self.outcomes)}
        if self.ctx.dry_run:
            figures["dry_run_dir"] = str(self.outbox)
        return figures

    @staticmethod
    def describe(job: JobReport) -> str:
        """`2 messages sent; recipients: 3 accepted, 1 refused`, or what a dry run wrote."""
        from xfer.outputs.wording import count, plural

        summary = job.summary
        if "dry_run_dir" in summary:
            return f"{plural(job.counts['ok'], 'message')} written to {summary['dry_run_dir']} (dry run, nothing sent)"
        outcomes = [f"{count(number)} {outcome}" for outcome, number in summary["recipients"].items() if number]
        return f"{plural(summary['sent'], 'message')} sent; recipients: {', '.join(outcomes) or 'none'}"


def read_draft(spec: Any, resolve: Callable[[Path | str], Path]) -> Draft:
    """The job's shared message parts, bodies and attachments read from their files;
    PermanentError names a file that cannot be read, or a body that uses fields when
    there is no merge file."""
    text = spec.text if spec.text is not None else _read_text(resolve(spec.text_file), "text_file")
    html = spec.html if spec.html_file is None else _read_text(resolve(spec.html_file), "html_file")
    files = []
    for name in spec.attachments:
        path = resolve(name)
        try:
            files.append(attachment(path.name, path.read_bytes()))
        except OSError as exc:
            raise PermanentError(f"attachment {path}: {exc.strerror or exc}") from None
    draft = Draft(
        sender=spec.sender, subject=spec.subject, text=text, html=html, to=list(spec.to), cc=list(spec.cc),
        bcc=list(spec.bcc), reply_to=spec.reply_to, headers=dict(spec.headers), attachments=files,
    )
    try:
        used = draft.fields_used()
    except ValueError as exc:
        raise PermanentError(str(exc)) from None
    if used and spec.merge is None:
        raise PermanentError(f"the bodies use ${min(used)}, but fields come from a merge file and there is none")
    return draft


def _read_text(path: Path, key: str) -> str:
    """A body template from its file; PermanentError names the file when it cannot be
    read or has a stray `$`."""
    try:
        text = path.read_text(encoding="utf-8")
        placeholders(text, f"{key} {path}")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise PermanentError(f"{key} {path}: {reason or exc}") from None
    except ValueError as exc:
        raise PermanentError(str(exc)) from None
    return text


def _write_atomically(path: Path, data: bytes) -> None:
    """`path` appears complete or not at all (a temporary name in its folder, then renamed)."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as stream:
            stream.write(data)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
