"""Per-endpoint call metrics, cheap enough to keep on every call.

A finished call costs one bucket lookup (``bisect`` over fixed, log-spaced
bounds), a few integer additions and, every ``SLOT_SECONDS``, one rotation:
no list of latencies, no sorting, no allocation. Percentiles are read at
status time from the buckets of the last ``SLOTS`` slots (a sliding window of
about a minute); the slots that leave the window fold into ``retired``, so the
lifetime histogram (what Prometheus scrapes) costs nothing more per call.
CPU and memory are read from ``/proc`` at status time (:func:`cpu_seconds`),
never per call.
"""

from __future__ import annotations

import os
from collections import deque
from math import ceil, log2
from time import perf_counter

from mpreg.node.calls import InFlight
from mpreg.protocol.codec import Blob
from mpreg.protocol.messages import ErrorInfo, Held

# Upper bounds (ms) of the latency buckets: 0.01 ms to ~92 s, four per doubling
# (+19% each), so a percentile read inside one bucket is off by under 10%.
# The last bucket (index len(BOUNDS_MS)) takes everything slower.
FIRST_MS = 0.01
PER_DOUBLING = 4
BOUNDS_MS: tuple[float, ...] = tuple(FIRST_MS * 2 ** (i / PER_DOUBLING) for i in range(93))
OVERFLOW = len(BOUNDS_MS)  # the index of the bucket past the last bound
SLOTS = 6
SLOT_SECONDS = 10.0  # SLOTS * SLOT_SECONDS: the window percentiles are read over


def bucket_of(ms: float) -> int:
    """The index of the first bound >= ``ms`` (what ``bisect_left(BOUNDS_MS, ms)`` says).

    Computed, not searched: one log2 is a third of a bisect over 93 floats.
    """
    if ms <= FIRST_MS:
        return 0
    return min(OVERFLOW, ceil(log2(ms / FIRST_MS) * PER_DOUBLING))


def _zeros() -> list[int]:
    return [0] * (len(BOUNDS_MS) + 1)


class LatencyWindow:
    """A fixed-bucket latency histogram over a sliding window, and over all time.

    Time (``now``, seconds on any monotonic clock) is passed in, so it is tested
    without waiting.
    """

    __slots__ = ("current", "retired", "rotate_at", "slot_seconds", "slots", "sum_ms")

    def __init__(self, now: float, slots: int = SLOTS, slot_seconds: float = SLOT_SECONDS) -> None:
        self.slot_seconds = slot_seconds
        self.slots: deque[list[int]] = deque(_zeros() for _ in range(slots))
        self.current = self.slots[-1]
        self.retired = _zeros()  # counts of the slots that left the window
        self.sum_ms = 0.0  # of every latency ever added
        self.rotate_at = now + slot_seconds

    def __repr__(self) -> str:
        return f"<LatencyWindow window={sum(self.window())} total={sum(self.lifetime())}>"

    def add(self, ms: float, now: float) -> None:
        if now >= self.rotate_at:
            self.advance(now)
        self.current[bucket_of(ms)] += 1
        self.sum_ms += ms

    def advance(self, now: float) -> None:
        """Drop the slots older than the window at ``now`` (an idle endpoint's too)."""
        slots = self.slots
        for _ in range(len(slots)):
            if now < self.rotate_at:
                return
            old = slots.popleft()
            self.retired = [a + b for a, b in zip(self.retired, old, strict=True)]
            slots.append(_zeros())
            self.current = slots[-1]
            self.rotate_at += self.slot_seconds
        # Idle longer than the whole window: every slot is fresh; restart the clock.
        self.rotate_at = now + self.slot_seconds

    def window(self) -> list[int]:
        """Counts per bucket of the calls in the window."""
        return [sum(counts) for counts in zip(*self.slots, strict=True)]

    def lifetime(self) -> list[int]:
        """Counts per bucket of every call ever added."""
        return [r + w for r, w in zip(self.retired, self.window(), strict=True)]


def percentile(counts: list[int], q: float) -> float | None:
    """The ``q`` quantile (0..1) in ms of bucket ``counts``, interpolated in its bucket.

    None when there are no counts: no figure, not zero.
    """
    total = sum(counts)
    if not total:
        return None
    target = q * total
    seen = 0
    for i, count in enumerate(counts):
        if count and seen + count >= target:
            lower = BOUNDS_MS[i - 1] if i else 0.0
            upper = BOUNDS_MS[min(i, len(BOUNDS_MS) - 1)]
            return lower + (upper - lower) * max(0.0, target - seen) / count
        seen += count
    return BOUNDS_MS[-1]  # unreachable: the loop ends at the total


class EndpointCounters:
    """What one endpoint's finished calls added up to."""

    __slots__ = ("bytes_in", "bytes_out", "calls", "errors", "lane_busy", "lane_calls", "latency")

    def __init__(self, now: float) -> None:
        self.calls = 0  # the lanes' included
        self.errors = 0
        self.lane_calls = 0  # of ``calls``, those clients sent straight to the process
        self.lane_busy = 0.0  # seconds from their arrival to their answer, summed
        self.bytes_in = 0  # arguments and dependency results sent to its process
        self.bytes_out = 0  # results its process sent back
        self.latency = LatencyWindow(now)

    def __repr__(self) -> str:
        return f"<EndpointCounters calls={self.calls} errors={self.errors}>"


class CallMetrics:
    """Every endpoint's counters on one node; ``enabled=False`` records nothing.

    The off switch exists to measure what the metrics cost
    (``benchmarks/metrics_cost.py``); a node runs with them on.
    """

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.counters: dict[str, EndpointCounters] = {}

    def __repr__(self) -> str:
        return f"<CallMetrics enabled={self.enabled} endpoints={len(self.counters)}>"

    def done(self, record: InFlight, result: Blob | Held | None, error: ErrorInfo | None) -> None:
        """``record``'s answer came back from its endpoint (its latency ends now)."""
        if not self.enabled:
            return
        now = perf_counter()  # the clock the dispatcher stamps ``started`` with
        counters = self.counters.get(record.endpoint_id)
        if counters is None:
            counters = self.counters[record.endpoint_id] = EndpointCounters(now)
        counters.calls += 1
        if error is not None:
            counters.errors += 1
        counters.bytes_in += record.nbytes
        if type(result) is Blob:
            for part in result.parts:  # size_of inlined, as below: calls cost here
                counters.bytes_out += part.nbytes if isinstance(part, memoryview) else len(part)
        elif result is not None:  # Held: made on the member, and stayed there
            counters.bytes_out += result.nbytes
        # LatencyWindow.add and bucket_of inlined.
        latency = counters.latency
        if now >= latency.rotate_at:
            latency.advance(now)
        ms = (now - record.started) * 1e3
        i = ceil(log2(ms / FIRST_MS) * PER_DOUBLING) if ms > FIRST_MS else 0
        latency.current[i if i < OVERFLOW else OVERFLOW] += 1
        latency.sum_ms += ms

    def lane(self, endpoint_id: str, calls: int, errors: int, busy: float) -> None:
        """What a process's lanes answered (its ``LaneCounts``): counted, but in no
        latency bucket (the node never saw them start or end)."""
        if not self.enabled:
            return
        counters = self.counters.get(endpoint_id)
        if counters is None:
            counters = self.counters[endpoint_id] = EndpointCounters(perf_counter())
        counters.calls += calls
        counters.errors += errors
        counters.lane_calls += calls
        counters.lane_busy += busy


def cpu_seconds(pid: int) -> float | None:
    """User plus system CPU seconds ``pid`` used so far; None without /proc or the process."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()  # the name may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return None
