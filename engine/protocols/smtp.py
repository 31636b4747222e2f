"""SMTP over aiosmtplib: one pooled connection is one SMTP session.

`smtps://` is implicit TLS; `smtp://` upgrades with STARTTLS always (`starttls=True`),
when the server offers it (None, "auto" in job files) or never (False). AUTH happens when the URL carries
credentials. Every aiosmtplib exception leaves here as an `engine.errors` type whose
`smtp_code` attribute keeps the reply code (None when the server never answered), so
load tests count reply codes without matching on text.

aiosmtplib connects, says EHLO, upgrades with STARTTLS and logs in. It does not
pipeline, so when the server offers PIPELINING (RFC 2920; Postfix and smtp-sink do) the
session goes on over `_pipeline.ReplyStream`: a transaction goes out as MAIL FROM +
every RCPT TO + DATA in one write, and the replies are read in order before the body is
sent: one round trip instead of two plus one per recipient. `submit` (a load test's
send) does not wait for the reply to the content: the next transaction's commands go
in the same write, and the reply reaches a callback when it comes. Refusals are
reported exactly as on the one-by-one path."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import ssl
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import aiosmtplib

from xfer.errors import AuthError, ConnectionLimitError, PermanentError, TransientError, XferError
from xfer.protocols._pipeline import ReplyStream, message_body, transaction_head
from xfer.protocols._tls import cleartext_allowed, cleartext_refused, client_context, is_certificate_error
from xfer.urls import Url

if TYPE_CHECKING:
    from xfer.spec import HostConfig

#: Seconds for one SMTP command (the pool bounds connecting separately).
DEFAULT_COMMAND_TIMEOUT = 60.0
_QUIT_TIMEOUT = 2.0


@dataclass(frozen=True, slots=True)
class SendResult:
    """The server's final reply to one message, and recipients it refused (address -> code)."""

    code: int
    message: str
    refused: dict[str, int] = field(default_factory=dict)


def smtp_code(exc: BaseException) -> int | None:
    """The SMTP reply code behind a translated error, or None (no reply: a socket error)."""
    return getattr(exc, "smtp_code", None)


def _with_code(error: XferError, code: int | None) -> XferError:
    error.smtp_code = code  # type: ignore[attr-defined]
    return error


def translate(exc: BaseException, where: str) -> BaseException:
    """An aiosmtplib/socket exception as the engine error the scheduler understands.

    421 -> ConnectionLimitError, 535 -> AuthError, other 4xx -> TransientError, other
    5xx -> PermanentError; socket trouble is transient, a failed certificate check is not."""
    if isinstance(exc, XferError):
        return exc
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        first = exc.recipients[0]
        return translate(first, where)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        code, text = exc.code, f"{where}: {exc.code} {exc.message}".strip()
        if code == 421:
            return _with_code(ConnectionLimitError(text), code)
        if isinstance(exc, aiosmtplib.SMTPAuthenticationError) and code >= 500 or code == 535:
            return _with_code(AuthError(text), code)
        if 400 <= code < 500:
            return _with_code(TransientError(text), code)
        return _with_code(PermanentError(text), code)
    if is_certificate_error(exc):
        return _with_code(PermanentError(f"{where}: TLS certificate not trusted ({_first_line(exc)})"), None)
    if isinstance(exc, (aiosmtplib.SMTPTimeoutError, TimeoutError)):
        return _with_code(TransientError(f"{where}: timed out ({_first_line(exc)})"), None)
    if isinstance(exc, (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPConnectError, OSError, EOFError)):
        return _with_code(TransientError(f"{where}: {_first_line(exc)}"), None)
    if isinstance(exc, aiosmtplib.SMTPException):
        # What the server lacks (AUTH, STARTTLS, SMTPUTF8) it will lack on a retry too.
        return _with_code(PermanentError(f"{where}: {_first_line(exc)}"), None)
    return exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


#: What `SmtpConnection.submit` hands a message's outcome to.
Answered = Callable[[SendResult | XferError], None]


class SmtpConnection:
    """A connected (and, with credentials, logged-in) SMTP session."""

    def __init__(self, client: aiosmtplib.SMTP, where: str) -> None:
        self.client = client
        self.where = where
        #: Transactions this session attempted (accepted or not), for `messages_per_connection`.
        self.messages = 0
        #: Of those, the ones sent pipelined (MAIL, RCPT..., DATA in one write).
        self.pipelined = 0
        self._closed = False
        self._stream: ReplyStream | None = None  # the transport, once the session pipelines

    def __repr__(self) -> str:
        return f"<SmtpConnection {self.where} messages={self.messages}{' closed' if self._closed else ''}>"

    def is_usable(self) -> bool:
        stream = self._stream
        return not self._closed and self.client.is_connected and (stream is None or stream.error is None)

    async def send(self, sender: str, recipients: Sequence[str], data: bytes) -> SendResult:
        """One transaction (MAIL, RCPT..., DATA); raises a translated error when refused.

        A refused transaction is reset (RSET) so the session stays usable."""
        result = await self._transaction(sender, recipients, data, None)
        assert result is not None
        return result

    async def submit(
        self, sender: str, recipients: Sequence[str], data: bytes, answered: Answered, *, framed: bool = False
    ) -> None:
        """`send` that returns once the content is on its way when the session pipelines:
        `answered` gets the SendResult or the translated error when the reply comes
        (before any later transaction's replies are read; the next transaction's
        commands go out with this content). A refusal before the content, or a lost
        session, raises as `send` does, and then `answered` is not called. Without
        PIPELINING the reply is waited for and `answered` called before this returns.
        `framed`: `data` has CRLF line ends only and no line starting with a dot."""
        result = await self._transaction(sender, recipients, data, answered, framed)
        if result is not None:
            answered(result)

    async def _transaction(
        self, sender: str, recipients: Sequence[str], data: bytes, answered: Answered | None, framed: bool = False
    ) -> SendResult | None:
        client = self.client
        refused: dict[str, int] = {}
        self.messages += 1
        try:
            options = (f"SIZE={len(data)}",) if client.supports_extension("size") else ()
            if client.supports_extension("pipelining"):
                return await self._pipelined(sender, options, recipients, data, refused, answered, framed)
            await client.mail(sender, options=options)
            for recipient in recipients:
                try:
                    await client.rcpt(recipient)
                except aiosmtplib.SMTPRecipientRefused as exc:
                    refused[recipient] = exc.code
                    if len(refused) == len(recipients):
                        raise
            reply = await client.data(data)
        except aiosmtplib.SMTPResponseException as exc:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await self._reset()
            raise translate(exc, self.where) from None
        except Exception as exc:  # noqa: BLE001 - translated, or re-raised as is
            raise translate(exc, self.where) from None
        return SendResult(reply.code, reply.message, refused)

    async def _reset(self) -> None:
        if self._stream is None:
            await self.client.rset()
        else:
            await self._stream.exchange(b"RSET\r\n", 1)

    def _stream_of(self) -> ReplyStream:
        """The session's ReplyStream, made (taking the transport from aiosmtplib) on first use."""
        if self._stream is None:
            client = self.client
            if client.protocol is None or client.transport is None:
                raise aiosmtplib.SMTPServerDisconnected("Server not connected")
            self._stream = ReplyStream(client.transport, client.protocol, client.timeout)  # type: ignore[arg-type]
        return self._stream

    async def _pipelined(
        self, sender: str, options: tuple[str, ...], recipients: Sequence[str], data: bytes, refused: dict[str, int],
        answered: Answered | None, framed: bool,
    ) -> SendResult | None:
        """MAIL, RCPT... and DATA in one write, their replies in order, then the body;
        with `answered`, the body's reply goes to it and this returns None.

        Raises what aiosmtplib's mail/rcpt/data would have raised for the same replies."""
        stream = self._stream_of()
        self.pipelined += 1
        head = transaction_head(sender, options, tuple(recipients))
        mail, *rcpts, start = await stream.exchange(head, len(recipients) + 2)
        accepted = 0
        for recipient, reply in zip(recipients, rcpts):
            if reply.code in (250, 251):
                accepted += 1
            else:
                refused[recipient] = reply.code
        if start.code == 354 and (mail.code != 250 or not accepted):
            await stream.exchange(b".\r\n", 1)  # the server took DATA anyway: end it empty
        if mail.code != 250:
            raise aiosmtplib.SMTPSenderRefused(mail.code, mail.message, sender)
        if len(refused) == len(recipients):  # as on the one-by-one path (a repeated address counts once)
            last = rcpts[-1]
            raise aiosmtplib.SMTPRecipientRefused(last.code, last.message, recipients[-1])
        if start.code != 354:
            raise aiosmtplib.SMTPDataError(start.code, start.message)
        if answered is not None:
            stream.send(message_body(data, framed), 1, functools.partial(self._answered, answered, refused))
            return None
        (reply,) = await stream.exchange(message_body(data, framed), 1)
        if reply.code != 250:
            raise aiosmtplib.SMTPDataError(reply.code, reply.message)
        return SendResult(reply.code, reply.message, refused)

    def _answered(
        self, answered: Answered, refused: dict[str, int], outcome: list[aiosmtplib.SMTPResponse] | Exception
    ) -> None:
        """The reply to a submitted message's content (no RSET after a refusal: the reply
        to the end of data ends the transaction, whatever it says)."""
        if isinstance(outcome, Exception):
            error = translate(outcome, self.where)
        else:
            (reply,) = outcome
            if reply.code == 250:
                answered(SendResult(reply.code, reply.message, refused))
                return
            error = translate(aiosmtplib.SMTPDataError(reply.code, reply.message), self.where)
        answered(error if isinstance(error, XferError) else TransientError(f"{self.where}: {_first_line(error)}"))

    async def close(self) -> None:
        """QUIT politely within a short timeout (after replies still due, which the
        command timeout bounds), else drop the socket; never raise."""
        if self._closed:
            return
        self._closed = True
        stream = self._stream
        if self.client.is_connected:
            with contextlib.suppress(Exception):
                if stream is None:
                    async with asyncio.timeout(_QUIT_TIMEOUT):
                        await self.client.quit()
                elif stream.error is None:
                    limit = _QUIT_TIMEOUT + ((self.client.timeout or 0.0) if stream.due else 0.0)
                    async with asyncio.timeout(limit):
                        await stream.exchange(b"QUIT\r\n", 1)
        with contextlib.suppress(Exception):
            self.client.close()


class SmtpConnector:
    """Opens SMTP sessions to `url` with the host's TLS settings and the URL's credentials."""

    def __init__(
        self,
        url: Url,
        host: HostConfig,
        *,
        starttls: bool | None = None,
        local_hostname: str | None = None,
        timeout: float = DEFAULT_COMMAND_TIMEOUT,
    ) -> None:
        if url.tls and starttls:
            raise ValueError("smtps:// is already TLS: starttls must be auto or false")
        self.url = url
        self.host = host
        self.starttls = starttls
        self.local_hostname = local_hostname
        self.timeout = timeout
        self.endpoint = url.endpoint
        self._context: ssl.SSLContext | None = None  # built once, when a session first needs TLS (~40 ms)
        self.identity: Hashable = (
            "smtp", url.scheme, url.endpoint, url.login, starttls, host.tls_verify, host.ca_file, local_hostname,
        )

    def __repr__(self) -> str:
        mode = "auto" if self.starttls is None else str(self.starttls).lower()
        return f"<SmtpConnector {self.url} starttls={mode}>"

    async def connect(self) -> SmtpConnection:
        where = f"smtp {self.endpoint}"
        client = aiosmtplib.SMTP(
            hostname=self.url.host,
            port=self.url.port,
            use_tls=self.url.tls,
            start_tls=False,  # decided below, so a TLS context is built only when one is used
            tls_context=self._tls_context() if self.url.tls else None,
            validate_certs=self.host.tls_verify,
            local_hostname=self.local_hostname,
            timeout=self.timeout,
        )
        try:
            await client.connect()
            if not self.url.tls and self.starttls is not False:
                await client.ehlo()
                if client.supports_extension("starttls"):
                    await client.starttls(tls_context=self._tls_context())
                elif self.starttls:
                    raise aiosmtplib.SMTPException("SMTP STARTTLS extension not supported by server.")
            if self.url.user:
                self._check_cleartext(client, where)
                await client.login(self.url.user, self.url.secret())
        except BaseException as exc:
            client.close()
            if isinstance(exc, Exception):
                raise translate(exc, where) from None
            raise
        return SmtpConnection(client, where)

    def _tls_context(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = client_context(self.host)
        return self._context

    def _check_cleartext(self, client: aiosmtplib.SMTP, where: str) -> None:
        """AUTH only over TLS (after any STARTTLS), unless clear credentials are allowed here."""
        if client.get_transport_info("sslcontext") is None:
            if not cleartext_allowed(client.get_transport_info("peername")[0], self.host):
                raise cleartext_refused(where, "smtps")
