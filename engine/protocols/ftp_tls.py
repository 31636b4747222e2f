"""TLS for FTP data connections: the control connection's context bound to its TLS
session, so a data connection resumes that session. Servers may require it
(vsftpd's `require_ssl_reuse`, on by default), as proof that the data connection
comes from the client that logged in.

asyncio's `start_tls` takes a context but no session (cpython issue 79152); it
makes the TLS object with `wrap_bio`, so a context whose `wrap_bio` passes the
session is enough (the trick aioftp's `SSLSessionBoundContext` uses). The context
must be an `ssl.SSLContext` (start_tls checks), hence the subclass; verification,
host name check and protocol settings are the control context's own."""

from __future__ import annotations

import ssl


class SessionBoundContext(ssl.SSLContext):
    """`context`, with every TLS object it makes resuming `session`."""

    def __new__(cls, context: ssl.SSLContext, session: ssl.SSLSession | None) -> SessionBoundContext:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(self, context: ssl.SSLContext, session: ssl.SSLSession | None) -> None:
        self.context = context
        self.session = session

    def wrap_bio(  # type: ignore[override]
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        return self.context.wrap_bio(
            incoming, outgoing, server_side=server_side, server_hostname=server_hostname, session=self.session
        )


def data_context(control: ssl.SSLObject | None) -> ssl.SSLContext | None:
    """The context for a data connection of the control connection whose TLS object is
    `control` (None for a plain one)."""
    if control is None:
        return None
    return SessionBoundContext(control.context, control.session)
