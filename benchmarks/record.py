"""What one repetition of one system measured, and the helpers that measure it."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from benchmarks.config import WORKLOADS, Sizes
from benchmarks.procs import tree_memory
from benchmarks.stats import percentile


@dataclass
class Recorder:
    """Figures of one system in one repetition, keyed by metric (see config.METRICS)."""

    system: str
    sizes: Sizes
    selected: frozenset[str] = frozenset(WORKLOADS)
    loop: str = ""
    versions: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, dict[str, Any]] = field(default_factory=dict)

    def wants(self, workload: str) -> bool:
        return workload in self.selected

    def latency(self, key: str, seconds: list[float], ok: bool, **extra: Any) -> None:
        """Per-call latencies of one repetition."""
        self.metrics[key] = {
            "n": len(seconds),
            "p50": percentile(seconds, 0.5),
            "p99": percentile(seconds, 0.99),
            "mean": sum(seconds) / len(seconds) if seconds else 0.0,
            "ok": ok,
            **extra,
        }

    def value(self, key: str, value: float, ok: bool = True, **extra: Any) -> None:
        """One number for this repetition (a rate, a start-up time, bytes)."""
        self.metrics[key] = {"value": value, "ok": ok, **extra}

    def to_dict(self) -> dict[str, Any]:
        return {
            "system": self.system,
            "loop": self.loop,
            "versions": self.versions,
            "metrics": self.metrics,
        }


def cold_start(rec: Recorder, start: Callable[[], Any], expected: Any) -> None:
    """Time ``start()`` (bring the system up and return a first result), then read
    the idle memory of this process and everything below it."""
    t0 = time.perf_counter()
    first = start()
    elapsed = time.perf_counter() - t0
    rec.value("cold_start", elapsed, ok=first == expected)
    time.sleep(rec.sizes.settle_seconds)
    idle_memory(rec)


def idle_memory(rec: Recorder) -> None:
    """Record workload 6: the memory of this process and everything below it, now."""
    mem = tree_memory(os.getpid())
    rec.value(
        "idle_rss",
        mem.rss_bytes,
        ok=mem.rss_bytes > 0,
        pss_bytes=mem.pss_bytes,
        processes=mem.processes,
        names=list(mem.names),
    )


def sequential(
    call: Callable[[int], Any], n: int, warmup: int, check: Callable[[int, Any], bool]
) -> tuple[list[float], bool]:
    """Time ``n`` blocking calls one after another (after ``warmup`` untimed ones).

    The warm-up uses other inputs than the timed calls, so no system can serve
    a timed call from a cache the warm-up filled (Dask keys tasks by input).
    """
    ok = True
    for i in range(n, n + warmup):
        ok &= check(i, call(i))
    out = []
    clock = time.perf_counter
    for i in range(n):
        t = clock()
        result = call(i)
        out.append(clock() - t)
        ok &= check(i, result)
    return out, ok


def make_array(nbytes: int, seed: int) -> Any:
    """A float64 numpy array of ``nbytes``; a bytearray where numpy is not installed
    (the smoke test runs without the bench group; both travel out-of-band)."""
    try:
        import numpy as np
    except ImportError:
        pattern = bytes((seed + i) % 256 for i in range(256))
        return bytearray((pattern * (nbytes // 256 + 1))[:nbytes])
    return np.arange(nbytes // 8, dtype=np.float64) + seed


def same_array(a: Any, b: Any) -> bool:
    if isinstance(a, bytearray | bytes | memoryview):
        return bytes(a) == bytes(b)
    import numpy as np

    return bool(a.shape == b.shape and np.array_equal(a, b))


def echo_arrays(rec: Recorder, echo: Callable[[Any], Any], warmup_calls: int = 2) -> None:
    """Workload 4: round-trip 1 MiB and 10 MiB float64 arrays through ``echo``."""
    sizes = rec.sizes
    for key, nbytes, calls in (
        ("echo_1mib", sizes.echo_small_bytes, sizes.echo_small_calls),
        ("echo_10mib", sizes.echo_large_bytes, sizes.echo_large_calls),
    ):
        arrays = [make_array(nbytes, i) for i in range(calls + warmup_calls)]
        ok = True
        for array in arrays[:warmup_calls]:
            ok &= same_array(echo(array), array)
        out = []
        for array in arrays[warmup_calls:]:
            t = time.perf_counter()
            back = echo(array)
            out.append(time.perf_counter() - t)
            ok &= same_array(back, array)  # checked outside the timed part
            del back
        rec.latency(key, out, ok, nbytes=nbytes, payload=type(arrays[0]).__name__)


async def pipelined(rec: Recorder, call: Callable[[int], Awaitable[Any]], **extra: Any) -> None:
    """Record workload 2: ``in_flight`` lanes each awaiting one call after another.

    The lanes share one counter, so exactly ``pipelined_calls`` calls run with
    ``in_flight`` of them outstanding at any time; ``call(i)`` must return ``i``.
    """
    sizes = rec.sizes
    n = sizes.pipelined_calls
    clock = time.perf_counter
    await asyncio.gather(*(call(i) for i in range(sizes.in_flight)))  # warm-up
    lat = [0.0] * n
    bad = 0
    todo = iter(range(n))

    async def lane() -> None:
        nonlocal bad
        for i in todo:
            t = clock()
            r = await call(i)
            lat[i] = clock() - t
            bad += r != i

    t0 = clock()
    await asyncio.gather(*(lane() for _ in range(sizes.in_flight)))
    elapsed = clock() - t0
    lat.sort()
    rec.value(
        "pipelined",
        n / elapsed,
        ok=bad == 0,
        seconds=elapsed,
        call_p50=lat[n // 2],
        call_p99=lat[int(n * 0.99)],
        **extra,
    )


def batches(
    call_batch: Callable[[range], list[Any]], n: int, window: int, warmup: bool = True
) -> tuple[float, bool]:
    """Time ``n`` calls issued ``window`` at a time: ``call_batch(range)`` starts one
    call per number (``mpreg.submit``, ``.remote()``), waits for all of them and
    returns their results, which must be the numbers. Returns (seconds, ok).

    The warm-up batch uses numbers the timed batches do not.
    """
    ok = True
    if warmup:
        ok &= call_batch(range(n, n + window)) == list(range(n, n + window))
    t0 = time.perf_counter()
    for base in range(0, n, window):
        todo = range(base, min(base + window, n))
        ok &= call_batch(todo) == list(todo)
    return time.perf_counter() - t0, ok


def sync_pipelined(rec: Recorder, call_batch: Callable[[range], list[Any]], **extra: Any) -> None:
    """Record workload sync-pipelined: ``sync_pipelined_calls`` in batches of ``in_flight``."""
    n = rec.sizes.sync_pipelined_calls
    seconds, ok = batches(call_batch, n, rec.sizes.in_flight)
    rec.value("sync_pipelined", n / seconds, ok=ok, seconds=seconds, **extra)
