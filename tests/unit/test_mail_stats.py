"""Load-test figures: HDR percentiles, the per-second series, and counts that add up."""

from __future__ import annotations

import time

from xfer.errors import AuthError, ConnectionLimitError, PermanentError, TransientError
from xfer.mail.latency import Latency, TimeSeries
from xfer.mail.loadstats import LoadStats
from xfer.protocols.smtp import SendResult, _with_code


def test_percentiles_within_hdr_precision() -> None:
    latency = Latency()
    for ms in range(1, 1001):
        latency.record(ms / 1000)
    summary = latency.summary()
    assert summary["count"] == 1000
    assert abs(summary["p50"] - 500) <= 1 and abs(summary["p99"] - 990) <= 1
    assert abs(summary["max_ms"] - 1000) <= 1
    assert sum(count for _, count in latency.buckets()) == 1000


def test_empty_latency_has_no_figures() -> None:
    assert Latency().summary()["p50"] is None


def test_series_folds_one_row_per_second() -> None:
    series = TimeSeries(start=100.0)
    series.record(100.1, "accepted", 0.010)
    series.record(100.9, "accepted", 0.030)
    series.record(101.2, "failed", None)
    series.record(103.5, "accepted", 0.020)
    rows = series.close()
    assert [row["t"] for row in rows] == [0, 1, 3]
    assert rows[0]["accepted"] == 2 and rows[1] == {"t": 1, "failed": 1}
    assert 9 <= rows[0]["p50_ms"] <= 11 and 29 <= rows[0]["max_ms"] <= 31


def test_every_outcome_adds_up() -> None:
    stats = LoadStats()
    stats.begin(time.monotonic())
    outcomes = [
        None, None,
        _with_code(PermanentError("550 no such user"), 550),
        _with_code(AuthError("535 bad credentials"), 535),
        _with_code(ConnectionLimitError("421 too many"), 421),
        _with_code(TransientError("connection refused"), None),
        TimeoutError("read timed out"),
    ]
    for outcome in outcomes:
        stats.started()
        if outcome is None:
            stats.done(time.monotonic(), SendResult(250, "ok"), 1000)
        else:
            stats.error(outcome)
    summary = stats.summary()
    assert summary["sent"] == 7 == summary["accepted"] + summary["rejected"] + summary["failed"]
    # 5xx are rejections; 4xx (421) are temporary failures, like errors with no reply
    assert (summary["accepted"], summary["rejected"], summary["failed"]) == (2, 2, 3)
    assert summary["reply_codes"] == {"250": 2, "421": 1, "535": 1, "550": 1}
    assert summary["errors"] == {
        "PermanentError": 1, "AuthError": 1, "ConnectionLimitError": 1, "TransientError": 1, "timeout": 1,
    }
    assert summary["bytes"] == 2000


def test_latency_mean_is_exact_and_buckets_count_every_message() -> None:
    """The mean is the exact mean (HDR's own walks its buckets and rounds each value to
    its bucket: 3 significant digits); the log buckets hold every recorded value."""
    from xfer.mail.latency import Latency

    latency = Latency()
    for seconds in (1.234567, 2.345678, 0.000321):
        latency.record(seconds)
    assert latency.summary()["mean_ms"] == round((1_234_567 + 2_345_678 + 321) / 3 / 1000, 3)
    assert sum(count for _, count in latency.buckets()) == 3


def test_series_percentiles_are_exact_for_the_second() -> None:
    series = TimeSeries(start=0.0)
    for millis in range(1, 101):  # 1 ms .. 100 ms within one second
        series.record(0.5, "accepted", millis / 1000)
    (row,) = series.close()
    assert (row["p50_ms"], row["p99_ms"], row["max_ms"]) == (50.0, 99.0, 100.0)
