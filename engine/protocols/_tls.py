"""TLS for the mail and news adapters: the client context (verified by default, with the
host block's `ca_file` as extra trust and `tls_verify: false` as the explicit opt-out),
and the rule that credentials travel only over TLS.

That rule: a password is sent unencrypted (SMTP AUTH, POP3 USER/PASS, IMAP LOGIN, NNTP
AUTHINFO) only to a server on a loopback address, as Dovecot and Postfix treat local
connections, or when the host block says `allow_plaintext_auth: true`. Otherwise an
attacker who strips STARTTLS from the server's capabilities would read it."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from typing import TYPE_CHECKING

from xfer.errors import PlaintextAuthRefused

if TYPE_CHECKING:
    from xfer.spec import HostConfig


def client_context(host: HostConfig) -> ssl.SSLContext:
    """A context that checks the server certificate and name unless the host opts out."""
    context = ssl.create_default_context(cafile=str(host.ca_file) if host.ca_file else None)
    if not host.tls_verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def is_certificate_error(exc: BaseException) -> bool:
    """Whether `exc` (or what caused it) is a failed certificate check: no retry fixes that."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def is_loopback(address: str) -> bool:
    """Whether the peer address (as `getpeername()` gives it) is a loopback address."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def cleartext_allowed(peer: str, host: HostConfig) -> bool:
    """Whether credentials may go unencrypted to `peer` (its address, as connected)."""
    return host.allow_plaintext_auth or is_loopback(peer)


def cleartext_refused(where: str, tls_scheme: str, why: str = "the server did not set up TLS") -> PlaintextAuthRefused:
    """The one-line error for credentials that would go out in clear."""
    return PlaintextAuthRefused(
        f"{where}: refusing to send credentials without TLS ({why}); "
        f"use {tls_scheme}:// or a server that offers STARTTLS, "
        f"or set allow_plaintext_auth: true in this host's block to send them in clear"
    )


def check_credentials_socket(sock: socket.socket, host: HostConfig, where: str, tls_scheme: str) -> None:
    """Raise before a login on `sock` (after any STARTTLS) that would send credentials in clear."""
    if not isinstance(sock, ssl.SSLSocket) and not cleartext_allowed(sock.getpeername()[0], host):
        raise cleartext_refused(where, tls_scheme)
