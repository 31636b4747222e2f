"""Job URLs (`ftp://user@host:21/path`, `imaps://...`) as typed values.

A `Url` keeps its password as a `Secret` so that printing, logging or reporting a
URL never shows it; `str(url)` is the URL without the password. (`Secret` is ours,
not pydantic's `SecretStr`: a run from a cached job file imports no pydantic.)"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from xfer.errors import PermanentError

#: Schemes xfer speaks, with their default ports.
DEFAULT_PORTS: dict[str, int] = {
    "ftp": 21,
    "ftps": 21,
    "nntp": 119,
    "nntps": 563,
    "smtp": 25,
    "smtps": 465,
    "pop3": 110,
    "pop3s": 995,
    "imap": 143,
    "imaps": 993,
}

#: Key for login fingerprints: random per process, so a fingerprint says nothing
#: about the password outside this run.
_FINGERPRINT_KEY = os.urandom(32)

#: Schemes whose connection starts with TLS (implicit TLS) or upgrades to it (ftps).
TLS_SCHEMES = frozenset({"ftps", "nntps", "smtps", "pop3s", "imaps"})


class Secret:
    """A password: shown as `**********` by `str`, `repr` and in reports; the clear
    text only through `get_secret_value()` (the same API as pydantic's `SecretStr`)."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __str__(self) -> str:
        return "**********" if self._value else ""

    def __repr__(self) -> str:
        return f"Secret('{self}')"

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: Any) -> Any:
        """How the spec models (which hold Urls) take a Secret: as it is."""
        from pydantic_core import core_schema

        return core_schema.is_instance_schema(cls)


@dataclass(frozen=True, slots=True)
class Url:
    scheme: str
    host: str
    port: int
    path: str = "/"
    user: str | None = None
    password: Secret | None = None

    @property
    def endpoint(self) -> str:
        """`host:port`: the key of the per-host connection limit."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    @property
    def tls(self) -> bool:
        return self.scheme in TLS_SCHEMES

    def with_credentials(self, user: str | None, password: Secret | None) -> Url:
        return replace(self, user=user, password=password)

    @property
    def login(self) -> tuple[str | None, str]:
        """Who logs in: the user and a keyed fingerprint of the password.

        Part of every connector's identity, so a pooled session logged in with one
        password is never lent to a job that gave another (a wrong password must
        fail, not borrow someone else's session)."""
        digest = hmac.new(_FINGERPRINT_KEY, self.secret().encode(), hashlib.sha256).hexdigest()[:32]
        return self.user, digest

    def secret(self) -> str:
        """The password in clear, for the protocol adapter that logs in."""
        return self.password.get_secret_value() if self.password else ""

    def __str__(self) -> str:
        user = f"{self.user}@" if self.user else ""
        return f"{self.scheme}://{user}{self.endpoint}{self.path}"

    def __repr__(self) -> str:
        return f"Url({str(self)!r})"


def parse_url(text: str, schemes: frozenset[str] | set[str] | None = None) -> Url:
    """Parse a job URL; raise ValueError (without echoing any password) when invalid."""
    if not isinstance(text, str):
        raise ValueError("expected a URL string")
    if any(ch in text for ch in "\r\n\0"):
        raise ValueError("URL contains a control character")
    parts = urlsplit(text.strip())
    scheme = parts.scheme.lower()
    allowed = schemes or DEFAULT_PORTS.keys()
    if scheme not in allowed:
        raise ValueError(f"scheme must be one of {', '.join(sorted(allowed))}, got {scheme or 'none'!r}")
    if not parts.hostname:
        raise ValueError("URL has no host")
    try:
        port = parts.port or DEFAULT_PORTS[scheme]
    except ValueError:
        raise ValueError("URL port must be a number from 1 to 65535") from None
    password = Secret(unquote(parts.password)) if parts.password is not None else None
    return Url(
        scheme=scheme,
        host=parts.hostname,
        port=port,
        path=unquote(parts.path) or "/",
        user=unquote(parts.username) if parts.username else None,
        password=password,
    )


def netrc_credentials(host: str, netrc_path: Path | None = None) -> tuple[str | None, Secret | None]:
    """Login and password for `host` from ~/.netrc (or $NETRC), or (None, None).

    A password is taken only from a file of the user's own that nobody else can read
    or write, as ftp(1) and Python's netrc (for ~/.netrc alone) insist: otherwise this
    raises PermanentError saying how to fix the file."""
    path = netrc_path or Path(os.environ.get("NETRC", Path.home() / ".netrc"))
    if not path.is_file():
        return None, None
    import netrc  # with shlex: only for users who have the file

    try:
        entry = netrc.netrc(str(path)).authenticators(host)
        info = path.stat()
    except (netrc.NetrcParseError, OSError):
        return None, None
    if not entry:
        return None, None
    login, _account, password = entry
    if password and (info.st_uid != os.getuid() or info.st_mode & 0o077):
        whose = "others can read it" if info.st_uid == os.getuid() else "another user owns it"
        raise PermanentError(
            f"{path}: not used for {host}: it holds passwords and {whose} (mode {info.st_mode & 0o777:04o}); "
            f"make it yours and private: chmod 600 {path}"
        )
    return login or None, Secret(password) if password else None
