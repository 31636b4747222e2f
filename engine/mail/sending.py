"""What both mail kinds use at run time: the STARTTLS choice, message sizes drawn
from a mix, the SMTP connector of a job (no pydantic: their spec models are in
`engine/mail/spec.py`)."""

from __future__ import annotations

import random
from typing import Literal

from xfer.jobfile import JobFile
from xfer.protocols.smtp import SmtpConnector
from xfer.urls import Url

#: `starttls:` in a job file: true (required), false (never), auto (when offered).
StartTls = bool | Literal["auto"]


class SizeChooser:
    """Draws message sizes from a mix, reproducibly (seeded) so runs compare."""

    def __init__(self, mix: list[tuple[int, float]], seed: int = 0) -> None:
        self.sizes = [size for size, _ in mix]
        self.weights = [weight for _, weight in mix]
        self._rng = random.Random(seed)

    def next(self) -> int:
        if len(self.sizes) == 1:
            return self.sizes[0]
        return self._rng.choices(self.sizes, self.weights)[0]


def smtp_connector(file: JobFile, url: Url, starttls: StartTls, timeout: float) -> SmtpConnector:
    """The connector for a job's `smtp:` URL, with credentials from URL, host block or netrc."""
    url = file.with_credentials(url)
    return SmtpConnector(
        url, file.host_config(url), starttls=None if starttls == "auto" else starttls, timeout=timeout
    )
