"""SMTP replies and socket failures become the engine errors the scheduler reads."""

from __future__ import annotations

import ssl

import aiosmtplib
import pytest

from xfer.errors import AuthError, ConnectionLimitError, PermanentError, TransientError, is_transient
from xfer.protocols.smtp import smtp_code, translate


@pytest.mark.parametrize(
    ("exc", "kind", "code"),
    [
        (aiosmtplib.SMTPResponseException(421, "too many connections"), ConnectionLimitError, 421),
        (aiosmtplib.SMTPConnectResponseError(421, "busy"), ConnectionLimitError, 421),
        (aiosmtplib.SMTPAuthenticationError(535, "bad credentials"), AuthError, 535),
        (aiosmtplib.SMTPAuthenticationError(454, "try later"), TransientError, 454),
        (aiosmtplib.SMTPDataError(452, "insufficient storage"), TransientError, 452),
        (aiosmtplib.SMTPSenderRefused(553, "no", "a@b"), PermanentError, 553),
        (aiosmtplib.SMTPRecipientsRefused([aiosmtplib.SMTPRecipientRefused(550, "unknown", "x@y")]), PermanentError, 550),
        (aiosmtplib.SMTPServerDisconnected("gone"), TransientError, None),
        (aiosmtplib.SMTPReadTimeoutError("slow"), TransientError, None),
        (ConnectionRefusedError(111, "refused"), TransientError, None),
        (aiosmtplib.SMTPException("The SMTP AUTH extension is not supported"), PermanentError, None),
    ],
)
def test_translation(exc: BaseException, kind: type, code: int | None) -> None:
    error = translate(exc, "smtp h:25")
    assert type(error) is kind
    assert smtp_code(error) == code
    assert str(error).startswith("smtp h:25")


def test_untrusted_certificate_is_permanent() -> None:
    cause = ssl.SSLCertVerificationError(1, "certificate verify failed: self-signed certificate")
    try:
        try:
            raise cause
        except ssl.SSLError as exc:
            raise aiosmtplib.SMTPConnectError("Error connecting") from exc
    except aiosmtplib.SMTPConnectError as wrapped:
        error = translate(wrapped, "smtp h:465")
    assert isinstance(error, PermanentError) and not is_transient(error)
    assert "certificate" in str(error)
