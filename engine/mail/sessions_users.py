"""The simulated users of a session load test: a pattern (`user{n}@example.test`, n
from 1 to `count`) with one password, or a file with one `address [password]` a line
(`#` starts a comment; a line without a password takes the shared one).

A bad line is one error naming file:line, never echoing the line (it may hold a password)."""

from __future__ import annotations

from pathlib import Path

from xfer.errors import PermanentError
from xfer.urls import Secret


def pattern_users(pattern: str, count: int, password: Secret | None) -> list[tuple[str, Secret | None]]:
    return [(pattern.replace("{n}", str(n)), password) for n in range(1, count + 1)]


def file_users(path: Path, password: Secret | None) -> list[tuple[str, Secret | None]]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PermanentError(f"{path}: cannot read the user list ({type(exc).__name__})") from None
    users: list[tuple[str, Secret | None]] = []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) > 2 or (len(fields) == 1 and password is None):
            raise PermanentError(f"{path}:{number}: expected 'address password' (or 'address' with users.password set)")
        users.append((fields[0], Secret(fields[1]) if len(fields) == 2 else password))
    if not users:
        raise PermanentError(f"{path}: no users in the list")
    return users
