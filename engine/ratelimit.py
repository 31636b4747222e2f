"""Token buckets that cap transfer rates: one per job, one per host (shared by every
job that talks to that host, like the connection pool).

A consumer takes the bytes it just moved and sleeps off any debt, so several tasks
sharing one bucket together stay under its rate. The bucket starts empty and saves no
credit while idle (no burst unless asked for): a limit holds from the first second,
overshot by at most the block each consumer has just read."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable

class TokenBucket:
    def __init__(self, rate: int, burst: int = 0) -> None:
        """`burst`: bytes that may go before the rate applies, and the most credit an
        idle bucket saves up (0: none, so a small limit is not run far over at first)."""
        if rate <= 0:
            raise ValueError("rate must be > 0")
        self.rate = float(rate)
        self.burst = float(burst)
        self._tokens = self.burst
        self._stamp = time.monotonic()

    def __repr__(self) -> str:
        return f"<TokenBucket {self.rate:.0f} B/s, {self._tokens:.0f}/{self.burst:.0f} tokens>"

    def _refill(self) -> None:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    async def consume(self, nbytes: int) -> None:
        """Account for `nbytes` moved; sleep until the bucket is out of debt."""
        self._refill()
        self._tokens -= nbytes
        if self._tokens < 0:
            await asyncio.sleep(-self._tokens / self.rate)


_host_buckets: dict[tuple[str, int], TokenBucket] = {}


def host_bucket(endpoint: str, rate: int | None) -> TokenBucket | None:
    """The one bucket of `endpoint` at `rate` for this process (None: no limit)."""
    if not rate:
        return None
    key = (endpoint, rate)
    bucket = _host_buckets.get(key)
    if bucket is None:
        bucket = _host_buckets[key] = TokenBucket(rate)
    return bucket


async def consume_all(buckets: Iterable[TokenBucket], nbytes: int) -> None:
    """Take `nbytes` from every bucket (the slowest one sets the pace)."""
    for bucket in buckets:
        await bucket.consume(nbytes)
