"""The error hierarchy the scheduler reads: transient errors are retried, permanent
ones fail their task at once. Protocol adapters translate library exceptions into
these, so no code outside an adapter matches on error strings."""

from __future__ import annotations

import errno

#: Local errors that no retry fixes: a full disk, no permission, a read-only target.
_LOCAL_PERMANENT_ERRNOS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EISDIR}
)


class XferError(Exception):
    """Base of xfer's own errors; its message is one line fit for a report."""


class SpecError(XferError):
    """A job file is invalid; the message names file, line, column and key."""


class TransientError(XferError):
    """Worth retrying: a timeout, a reset, a 4xx reply."""


class ConnectionLimitError(TransientError):
    """The server refused a connection because it has too many (FTP/NNTP 421...).

    The pool shrinks that host's limit for the rest of the run when it sees one."""


class PermanentError(XferError):
    """Retrying cannot help: refused login, no such file, a hostile name."""


class AuthError(PermanentError):
    """The server refused the credentials."""


class UnsafePathError(PermanentError):
    """A server-supplied name would land outside the destination."""


def is_transient(exc: BaseException) -> bool:
    """Whether the scheduler should retry after `exc`.

    Our own errors say so explicitly; timeouts and socket-level failures from
    libraries are transient; anything else (a bug, a ValueError) is permanent."""
    if isinstance(exc, XferError):
        return isinstance(exc, TransientError)
    if isinstance(exc, OSError) and exc.errno in _LOCAL_PERMANENT_ERRNOS:
        return False
    return isinstance(exc, (TimeoutError, EOFError, OSError))


def describe(exc: BaseException) -> str:
    """A one-line description of `exc` for reports and logs."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, XferError):
        return text or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return text or "timed out"
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


class PlaintextAuthRefused(PermanentError):
    """Credentials would go out unencrypted to a server that is not on loopback."""
