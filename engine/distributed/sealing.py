"""Units travel through Redis sealed: Fernet (AES-128-CBC + HMAC-SHA256) over the
pickled unit, so neither passwords nor anything else of a job file sits in Redis in
clear, and a worker unpickles only what a holder of the key sealed.

The key comes from `XFER_BROKER_KEY` (a Fernet key: `xfer worker --new-key` prints
one); `--workers N` makes a fresh key for its private run and hands it to its workers."""

from __future__ import annotations

import os
import pickle
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

from xfer.errors import SpecError

KEY_VARIABLE = "XFER_BROKER_KEY"


def new_key() -> str:
    return Fernet.generate_key().decode()


def key_from_environment() -> str:
    key = os.environ.get(KEY_VARIABLE)
    if not key:
        raise SpecError(f"{KEY_VARIABLE} is not set: the coordinator and every worker need the same key "
                        "(make one with `xfer worker --new-key`)")
    return key


class Sealer:
    def __init__(self, key: str) -> None:
        try:
            self._fernet = Fernet(key.encode())
        except ValueError:
            raise SpecError(f"{KEY_VARIABLE}: not a valid key (make one with `xfer worker --new-key`)") from None

    def seal(self, value: Any) -> str:
        return self._fernet.encrypt(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)).decode()

    def open(self, token: str) -> Any:
        try:
            return pickle.loads(self._fernet.decrypt(token.encode()))  # noqa: S301 - authenticated first
        except InvalidToken:
            raise ValueError("a unit sealed with another key (is XFER_BROKER_KEY the coordinator's?)") from None
