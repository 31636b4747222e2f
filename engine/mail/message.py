"""Test messages: each carries a unique token in its Message-ID and an `X-Xfer-Token`
header, so it can be found in a mailbox among other mail and told apart from copies.

Roundtrip messages are full MIME (a text body from a template or of a given size,
optional binary attachments); load messages are a few headers plus a cached filler
body, cheap enough to build thousands per second."""

from __future__ import annotations

import random
import secrets
import string
import time
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import formatdate
from functools import lru_cache

TOKEN_HEADER = "X-Xfer-Token"
_LINE = 76


def new_run_id() -> str:
    """A random prefix shared by the tokens of one run (what a mailbox search looks for)."""
    return "xfer" + secrets.token_hex(6)


def token_for(run_id: str, index: int) -> str:
    return f"{run_id}-{index:06d}"


def message_id(token: str, sender: str) -> str:
    domain = sender.rpartition("@")[2] or "xfer.invalid"
    return f"<{token}@{domain}>"


@lru_cache(maxsize=64)
def filler_text(size: int, seed: str = "xfer") -> str:
    """`size` bytes of printable ASCII in 76-character lines ending in CRLF."""
    rng = random.Random(seed)
    alphabet = string.ascii_letters + string.digits + " "
    lines, total = [], 0
    while total < size:
        width = min(_LINE, size - total - 2)
        line = "".join(rng.choices(alphabet, k=max(0, width))).rstrip() or "x"
        lines.append(line + "\r\n")
        total += len(line) + 2
    return "".join(lines)


def render(template: str, **values: object) -> str:
    """A template with `{token}`, `{index}`, `{run}` filled in (unknown names left alone)."""
    return string.Formatter().vformat(template, (), _Keep(values))


class _Keep(dict):  # type: ignore[type-arg]
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def roundtrip_message(
    *,
    token: str,
    envelope_from: str,
    headers: dict[str, str],
    body: str,
    attachments: list[int],
) -> bytes:
    """A MIME message with the token headers, `headers` as given, `body` and binary
    attachments of the given sizes (their bytes derive from the token)."""
    message = EmailMessage(policy=SMTP)
    for name, value in headers.items():
        message[name] = value
    if "Date" not in message:
        message["Date"] = formatdate(localtime=False)
    message["Message-ID"] = message_id(token, envelope_from)
    message[TOKEN_HEADER] = token
    message.set_content(body)
    rng = random.Random(token)
    for number, size in enumerate(attachments, 1):
        message.add_attachment(
            rng.randbytes(size), maintype="application", subtype="octet-stream", filename=f"attachment-{number}.bin"
        )
    return message.as_bytes()


@lru_cache(maxsize=1)
def _date(second: int) -> str:
    """The Date header's value for a second: formatted once a second, not per message."""
    return formatdate(second, localtime=False)


def load_message(*, token: str, envelope_from: str, to_header: str, size: int) -> bytes:
    """A plain message of about `size` bytes: unique headers, shared cached filler body.
    Framed for DATA as it is (CRLF lines only, none starting with a dot: addresses hold
    no CR/LF, the filler no dot), so it is sent without a look."""
    head = (
        f"From: {envelope_from}\r\n"
        f"To: {to_header}\r\n"
        f"Subject: xfer load {token}\r\n"
        f"Date: {_date(int(time.time()))}\r\n"
        f"Message-ID: {message_id(token, envelope_from)}\r\n"
        f"{TOKEN_HEADER}: {token}\r\n"
        "MIME-Version: 1.0\r\n"
        "Content-Type: text/plain; charset=us-ascii\r\n"
        "\r\n"
    ).encode("ascii")
    return head + _filler_bytes(max(3, size - len(head)))


@lru_cache(maxsize=64)
def _filler_bytes(size: int) -> bytes:
    return filler_text(size).encode("ascii")
