"""TLS for FTP data connections: the control connection's context bound to its TLS
session, so a data connection resumes that session. Servers may require it
(vsftpd's `require_ssl_reuse`, on by default), as proof that the data connection
comes from the client that logged in.

asyncio's `start_tls` takes a context but no session (cpython issue 79152); it
makes the TLS object with `wrap_bio`, so a context whose `wrap_bio` passes the
session is enough (the trick aioftp's `SSLSessionBoundContext` uses). The context
must be an `ssl.SSLContext` (start_tls checks), hence the subclass; verification,
host name check and protocol settings are the control context's own.

One such context serves all of a session's data connections: making an SSLContext
costs ~270 us (OpenSSL 3's SSL_CTX_new), as much as a whole small-file download;
each TLS object it makes takes the control connection's session as it is then
(TLS 1.3 servers send their session tickets after the handshake)."""

from __future__ import annotations

import ssl


class SessionBoundContext(ssl.SSLContext):
    """The context of `control` (a control connection's TLS object), with every TLS
    object it makes resuming `control`'s current session."""

    def __new__(cls, control: ssl.SSLObject) -> SessionBoundContext:
        return super().__new__(cls, ssl.PROTOCOL_TLS_CLIENT)

    def __init__(self, control: ssl.SSLObject) -> None:
        self.control = control

    def wrap_bio(  # type: ignore[override]
        self,
        incoming: ssl.MemoryBIO,
        outgoing: ssl.MemoryBIO,
        server_side: bool = False,
        server_hostname: str | bytes | None = None,
        session: ssl.SSLSession | None = None,
    ) -> ssl.SSLObject:
        control = self.control
        return control.context.wrap_bio(
            incoming, outgoing, server_side=server_side, server_hostname=server_hostname, session=control.session
        )
