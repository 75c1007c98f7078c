"""Per-call metrics: fixed latency buckets, a sliding window, percentiles read from them."""

from __future__ import annotations

import os
from bisect import bisect_left
from itertools import pairwise

from mpreg.node.calls import InFlight
from mpreg.node.metrics import (
    BOUNDS_MS,
    CallMetrics,
    LatencyWindow,
    bucket_of,
    cpu_seconds,
    percentile,
)
from mpreg.protocol.codec import Blob
from mpreg.protocol.messages import Call, ErrorInfo


def test_percentiles_of_known_latencies_are_within_a_bucket() -> None:
    window = LatencyWindow(now=0.0)
    for ms in range(1, 101):  # 1..100 ms, one each
        window.add(float(ms), now=1.0)
    counts = window.window()
    for q, exact in ((0.5, 50.0), (0.9, 90.0), (0.99, 99.0)):
        got = percentile(counts, q)
        assert got is not None and abs(got - exact) / exact < 0.2, (q, got)


def test_no_calls_is_no_figure_not_zero() -> None:
    assert percentile(LatencyWindow(now=0.0).window(), 0.5) is None


def test_latencies_beyond_the_last_bound_land_in_the_overflow_bucket() -> None:
    window = LatencyWindow(now=0.0)
    window.add(10 * BOUNDS_MS[-1], now=0.0)
    window.add(BOUNDS_MS[0] / 10, now=0.0)
    counts = window.window()
    assert counts[-1] == 1 and counts[0] == 1
    assert percentile(counts, 1.0) == BOUNDS_MS[-1]


def test_old_calls_leave_the_window_but_stay_in_the_lifetime_counts() -> None:
    window = LatencyWindow(now=0.0, slots=3, slot_seconds=10.0)
    window.add(1000.0, now=1.0)  # a slow call in the first slot
    for t in (11.0, 21.0):
        window.add(1.0, now=t)
    assert sum(window.window()) == 3
    window.add(1.0, now=31.0)  # the first slot (0-10 s) rotates out
    assert sum(window.window()) == 3
    slow = percentile(window.window(), 1.0)
    assert slow is not None and slow < 2.0  # the 1 s call is gone from the window
    assert sum(window.lifetime()) == 4
    assert window.sum_ms == 1003.0


def test_an_idle_window_empties_when_read_long_after() -> None:
    window = LatencyWindow(now=0.0, slots=3, slot_seconds=10.0)
    window.add(5.0, now=1.0)
    window.advance(now=500.0)
    assert sum(window.window()) == 0 and sum(window.lifetime()) == 1
    window.add(5.0, now=501.0)  # and counts again from then on
    window.advance(now=505.0)
    assert sum(window.window()) == 1


class _NoCancel:
    def cancel(self, record: InFlight) -> None:
        raise AssertionError("not cancelled here")


def _done(metrics: CallMetrics, error: ErrorInfo | None, result: Blob | None) -> None:
    call = Call(1, "f", Blob([b"abcd"]))
    record = InFlight(call, frozenset(), 0, lambda *a: None, _NoCancel(), endpoint_id="e1")
    record.nbytes = 4
    metrics.done(record, result, error)


def test_call_metrics_count_calls_errors_and_bytes_per_endpoint() -> None:
    metrics = CallMetrics()
    for _ in range(3):
        _done(metrics, None, Blob([b"xy", b"z"]))
    _done(metrics, ErrorInfo(kind="user", message="boom"), None)
    counters = metrics.counters["e1"]
    assert (counters.calls, counters.errors) == (4, 1)
    assert (counters.bytes_in, counters.bytes_out) == (16, 9)
    assert sum(counters.latency.window()) == 4


def test_call_metrics_switched_off_record_nothing() -> None:
    metrics = CallMetrics(enabled=False)
    _done(metrics, None, Blob([b"xy"]))
    assert metrics.counters == {}


def test_cpu_seconds_of_a_missing_process_is_none() -> None:
    assert cpu_seconds(0) is None
    own = cpu_seconds(os.getpid())
    assert own is not None and own > 0


def test_bucket_of_agrees_with_a_search_of_the_bounds() -> None:
    between = [(a + b) / 2 for a, b in pairwise(BOUNDS_MS)]
    for ms in (0.0, 0.005, 0.0101, 0.3, 1.0, 7.77, 123.4, 5e4, 1e9, *between):
        assert bucket_of(ms) == bisect_left(BOUNDS_MS, ms), ms
