"""The client TLS context every mail adapter uses: verified by default, with the
host block's `ca_file` as extra trust and `tls_verify: false` as the explicit opt-out."""

from __future__ import annotations

import ssl

from engine.spec import HostConfig


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
