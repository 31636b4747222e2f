"""What an FTP failure becomes when it leaves the protocol modules: one xfer error,
whose class the scheduler reads (engine/errors.py), and whether the session is still
usable afterwards.

421 at connect/login -> ConnectionLimitError (the pool shrinks), other 4xx ->
TransientError, 530 -> AuthError, 550 and other 5xx -> PermanentError, TLS
certificate failures -> PermanentError with a hint, lost connections -> TransientError.
Messages name the command and the server's reply, never a USER/PASS/ACCT argument,
and the password is scrubbed from any server text."""

from __future__ import annotations

import asyncio
import ssl

from xfer.errors import AuthError, ConnectionLimitError, PermanentError, TransientError
from xfer.protocols.ftp_reply import FtpProtocolError, StatusError, reply_text

#: Commands whose argument is a credential: never shown in messages.
_SECRET_VERBS = frozenset({"USER", "PASS", "ACCT"})
_CERT_HINT = "give the server's CA as ca_file, or set tls_verify: false in its host block"


def shown(command: str) -> str:
    """`command` as a message may show it (no credential)."""
    verb, _, argument = command.partition(" ")
    if verb.upper() in _SECRET_VERBS:
        return verb.upper()
    return f"{verb} {argument}".strip()


def translate(
    exc: BaseException, command: str, *, endpoint: str, logged_in: bool, timeout: float, secret: str
) -> tuple[Exception, bool] | None:
    """The error to raise for `exc`, met during `command` ("login" for USER/PASS),
    and whether the session is broken by it; None for an exception that is neither
    the protocol's nor the network's (it goes on as it is)."""
    what = shown(command)
    where = f"{endpoint}: {what}"

    def scrub(text: str) -> str:
        return text.replace(secret, "***") if len(secret) >= 3 else text

    if isinstance(exc, StatusError):
        code = exc.code
        text = scrub(reply_text(exc.info))
        message = f"{where}: {code} {text}".strip()
        if code == "421":
            return (TransientError if logged_in else ConnectionLimitError)(message), True
        if code == "530" or (code.startswith("5") and what == "login"):
            return AuthError(message), False
        if code.startswith("4"):
            return TransientError(message), False
        if code.startswith("5"):
            return PermanentError(message), False
        # An unexpected reply: we no longer know the session's state.
        return PermanentError(f"{where}: unexpected reply {code} {text}".strip()), True
    if isinstance(exc, ssl.SSLCertVerificationError):
        return PermanentError(f"{where}: TLS certificate verification failed: {exc.verify_message}; {_CERT_HINT}"), True
    if isinstance(exc, ssl.SSLError):
        return TransientError(f"{where}: TLS error: {exc.reason or exc}"), True
    if isinstance(exc, TimeoutError):
        return TimeoutError(f"{where}: no answer within {timeout:g}s"), True
    if isinstance(exc, (ConnectionError, EOFError, asyncio.IncompleteReadError)):
        return TransientError(f"{where}: connection lost ({type(exc).__name__})"), True
    if isinstance(exc, OSError):
        return TransientError(f"{where}: {exc.strerror or type(exc).__name__}"), True
    if isinstance(exc, FtpProtocolError):
        return PermanentError(f"{where}: {scrub(str(exc))}"), True
    return None
