"""Workload ``nn``: 4 driver processes calling 4 actors at once, total calls/s.

Driver k (a fresh process, ``multiprocessing`` spawn) connects to the
running cluster on its own, then, once every driver is ready, calls its own
actor k (``Model.predict``) ``nn_calls`` times in batches of ``in_flight``:
issue a batch through the system's public API, wait for all of it, repeat
(mpreg: ``mpreg.submit`` x 100 then ``mpreg.get``; Ray: ``.remote()`` x 100
then ``ray.get``; Dask: 100 actor calls then ``.result()`` of each). The
figure is every driver's calls over the wall time from the first driver's
start to the last driver's end (``time.perf_counter`` is CLOCK_MONOTONIC,
one clock for every process on the host).

A system supplies ``drive(k, args, calls, window, ready, done) -> ok``: set
up, call ``ready()`` (which returns when all drivers may start), run the
timed calls, call ``done()``, and return whether every result was right.
``ready`` and ``done`` mark the clock, so connecting and shutting down are
not timed.
"""

from __future__ import annotations

import importlib
import multiprocessing
import queue
import time
from collections.abc import Callable
from typing import Any

from benchmarks.record import Recorder

DRIVERS = 4
READY_TIMEOUT = 180.0
Drive = Callable[[int, Any, int, int, Callable[[], None], Callable[[], None]], bool]


def _driver(target: str, k: int, args: Any, calls: int, window: int, out: Any, go: Any) -> None:
    module, name = target.split(":")
    drive: Drive = getattr(importlib.import_module(module), name)
    marks: dict[str, float] = {}

    def ready() -> None:
        out.put(("ready", k, 0.0, 0.0, True, ""))
        if not go.wait(READY_TIMEOUT):
            raise TimeoutError("the other drivers never became ready")
        marks["start"] = time.perf_counter()

    def done() -> None:
        marks["end"] = time.perf_counter()

    try:
        ok = drive(k, args, calls, window, ready, done)
        out.put(("done", k, marks["start"], marks["end"], ok, ""))
    except BaseException as exc:  # reported to the parent, which fails the row
        out.put(("done", k, 0.0, 0.0, False, f"{type(exc).__name__}: {exc}"))


def run_nn(rec: Recorder, target: str, args: Any, **extra: Any) -> None:
    """Start ``DRIVERS`` processes running ``target`` (``module:function``), record ``nn``."""
    sizes = rec.sizes
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
    out = ctx.Queue()
    go = ctx.Event()
    procs = [
        ctx.Process(
            target=_driver,
            args=(target, k, args, sizes.nn_calls, sizes.in_flight, out, go),
            daemon=True,
        )
        for k in range(DRIVERS)
    ]
    for p in procs:
        p.start()
    done: dict[int, tuple[float, float, bool, str]] = {}
    ready = 0
    deadline = time.monotonic() + READY_TIMEOUT + 600
    try:
        while len(done) < DRIVERS:
            try:
                kind, k, start, end, ok, error = out.get(timeout=1.0)
            except queue.Empty:
                dead = [k for k, p in enumerate(procs) if not p.is_alive() and k not in done]
                if dead or time.monotonic() > deadline:
                    why = f"driver {dead[0]} died" if dead else "timed out"
                    raise TimeoutError(
                        f"n:n drivers: {why}; {len(done)} of {DRIVERS} finished"
                    ) from None
                continue
            if kind == "ready":
                ready += 1
                if ready == DRIVERS:
                    go.set()
            else:
                done[k] = (start, end, ok, error)
                if error:
                    go.set()  # let the others run out rather than wait for a dead one
    finally:
        go.set()  # a driver still waiting to start must not wait out READY_TIMEOUT
        for p in procs:
            p.join(30)
            if p.is_alive():
                p.kill()
                p.join()
    errors = [e for (_, _, _, e) in done.values() if e]
    if errors:
        raise RuntimeError(f"n:n driver failed: {errors[0]}")
    first = min(s for (s, _, _, _) in done.values())
    last = max(e for (_, e, _, _) in done.values())
    total = DRIVERS * sizes.nn_calls
    rec.value(
        "nn",
        total / (last - first),
        ok=all(ok for (_, _, ok, _) in done.values()),
        seconds=last - first,
        drivers=DRIVERS,
        per_driver=[sizes.nn_calls / (done[k][1] - done[k][0]) for k in sorted(done)],
        **extra,
    )
