"""Latency figures that stay small however long a load test runs.

`Latency` is an HDR histogram (microsecond resolution, 3 significant digits, up to an
hour): percentiles without keeping one number per message. `TimeSeries` keeps one row
per second of the run (counts and that second's p50/p99/max); only the current second
keeps its latencies, in a plain list (exact, and cheaper than a second histogram: the
pure-Python HDR costs ~10 µs a value), folded into its row when the next one starts."""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterator
from typing import Any

from hdrh.histogram import HdrHistogram

_MAX_US = 3_600_000_000
PERCENTILES = (50.0, 90.0, 99.0, 99.9)


def _ms(microseconds: float) -> float:
    return round(microseconds / 1000.0, 3)


class Latency:
    """Percentiles of latencies given in seconds, reported in milliseconds."""

    def __init__(self, significant_digits: int = 3) -> None:
        self._hist = HdrHistogram(1, _MAX_US, significant_digits)
        self._sum_us = 0  # for an exact mean: hdrh's walks every bucket in Python (~50 ms)

    @property
    def count(self) -> int:
        return self._hist.get_total_count()

    def record(self, seconds: float) -> None:
        microseconds = min(_MAX_US, max(1, round(seconds * 1e6)))
        self._hist.record_value(microseconds)
        self._sum_us += microseconds

    def reset(self) -> None:
        self._hist.reset()
        self._sum_us = 0

    def encode(self) -> str:
        """The histogram in HdrHistogram's compressed base64 form (any HDR tool reads it);
        the exact sum of latencies rides along for the mean."""
        return f"{self._sum_us}:{self._hist.encode().decode()}"

    def add_encoded(self, encoded: str) -> None:
        """Add another histogram (a worker's share of a distributed load test): the
        percentiles of the sum are those of every latency together."""
        total, _, histogram = encoded.partition(":")
        self._hist.decode_and_add(histogram)
        self._sum_us += int(total)

    def percentile_ms(self, percentile: float) -> float:
        return _ms(self._hist.get_value_at_percentile(percentile))

    def max_ms(self) -> float:
        return _ms(self._hist.get_max_value())

    def summary(self) -> dict[str, Any]:
        """count, min/mean/max and p50/p90/p99/p99.9 in ms (None when nothing was recorded)."""
        if not self.count:
            return {"count": 0, "min_ms": None, "mean_ms": None, "max_ms": None,
                    **{_key(p): None for p in PERCENTILES}}
        hist = self._hist
        return {
            "count": self.count,
            "min_ms": _ms(hist.get_min_value()),
            "mean_ms": _ms(self._sum_us / self.count),
            "max_ms": _ms(hist.get_max_value()),
            **{_key(p): self.percentile_ms(p) for p in PERCENTILES},
        }

    def _recorded(self) -> Iterator[tuple[int, int]]:
        """(highest value of the bucket in µs, count) of every bucket holding values, in
        order, from the counts array (hdrh's recorded iterator: ~50 ms in Python)."""
        hist = self._hist
        for index, count in enumerate(list(hist.counts)):
            if count:
                yield hist.get_highest_equivalent_value(hist.get_value_from_index(index)), count

    def buckets(self, per_decade: int = 10) -> list[tuple[float, int]]:
        """(upper bound in ms, count) on a log scale, for drawing the distribution."""
        counts: dict[int, int] = {}
        for value, count in self._recorded():
            step = math.floor(math.log10(max(1, value)) * per_decade)
            counts[step] = counts.get(step, 0) + count
        return [(_ms(10 ** ((step + 1) / per_decade)), counts[step]) for step in sorted(counts)]

    def percentile_curve(self, steps_per_decade: int = 20) -> list[tuple[float, float]]:
        """(percentile, ms) at even steps of log 1/(1-p) — the HdrHistogram and wrk2
        percentile plot — from p0 to the last percentile the count resolves (1 - 1/count),
        each value as `percentile_ms` gives it (the bucket's highest equivalent value)."""
        total = self.count
        if not total:
            return []
        cumulative, values, running = [], [], 0
        for value, count in self._recorded():
            running += count
            cumulative.append(running)
            values.append(value)
        steps = [10 ** (step / steps_per_decade) for step in range(int(math.log10(total) * steps_per_decade) + 1)]
        if steps[-1] < total:
            steps.append(total)
        curve = []
        for inverse in steps:  # inverse = 1/(1-p)
            fraction = 1 - 1 / inverse
            rank = max(1, int(fraction * total + 0.5))  # as hdrh's get_value_at_percentile counts
            curve.append((round(100 * fraction, 6), _ms(values[bisect.bisect_left(cumulative, rank)])))
        return curve


def _key(percentile: float) -> str:
    return f"p{percentile:g}".replace(".", "_")


#: The report's keys (`p99_9`) as people write them (`p99.9`).
LABELS = {_key(percentile): f"p{percentile:g}" for percentile in PERCENTILES}


class TimeSeries:
    """One row per second since `start` (a monotonic time): outcome counts and latency."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.rows: list[dict[str, Any]] = []
        self._second: int | None = None
        self._counts: dict[str, int] = {}
        self._latencies: list[float] = []  # this second's, in seconds

    def record(self, at: float, outcome: str, seconds: float | None) -> None:
        """A message finished at monotonic time `at`; `seconds` is its latency, if any."""
        second = max(0, int(at - self.start))
        if second != self._second:
            self._fold()
            self._second = second
        self._counts[outcome] = self._counts.get(outcome, 0) + 1
        if seconds is not None:
            self._latencies.append(seconds)

    def _fold(self) -> None:
        if self._second is None:
            return
        row: dict[str, Any] = {"t": self._second, **self._counts}
        if self._latencies:
            ordered = sorted(self._latencies)
            row.update(p50_ms=_at(ordered, 50), p99_ms=_at(ordered, 99), max_ms=round(ordered[-1] * 1000, 3))
        self.rows.append(row)
        self._counts = {}
        self._latencies = []

    def close(self) -> list[dict[str, Any]]:
        """Fold the current second and return all rows (call once, at the end)."""
        self._fold()
        self._second = None
        return self.rows


def _at(ordered: list[float], percentile: float) -> float:
    """The value (ms) at `percentile` of sorted latencies (seconds): the smallest with at
    least that share of values at or below it, as HDR histograms define it."""
    index = max(0, math.ceil(percentile / 100 * len(ordered)) - 1)
    return round(ordered[index] * 1000, 3)
