"""Ray as its docs recommend: ``ray.init(num_cpus=2)``, actors, ``ray.get``.

Pipelining follows Ray's "limit pending tasks with ray.wait" pattern; the
chain is ``f.remote(g.remote(h.remote(x)))`` with remote functions (tasks),
as the issue words it. ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` makes Ray use
the loopback address (its single-machine mode on macOS/Windows), so no
benchmark traffic leaves 127.0.0.1. ``RAY_ENABLE_UV_RUN_RUNTIME_ENV=0``: the
suite runs under ``uv run``, and Ray would otherwise start every worker through
``uv run`` too (slower start, an extra ``uv`` process); off, Ray starts plain
workers from the same virtualenv, its best case.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from benchmarks import payload
from benchmarks.record import (
    Recorder,
    batches,
    cold_start,
    echo_arrays,
    sequential,
    sync_pipelined,
)

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
os.environ.setdefault("RAY_ENABLE_UV_RUN_RUNTIME_ENV", "0")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network here: do not try


def run(rec: Recorder) -> None:
    import ray

    rec.loop = "Ray core worker (C++), sync ray.get"
    rec.versions = {"ray": ray.__version__}
    sizes = rec.sizes
    handles: dict[str, Any] = {}

    def start() -> Any:
        ray.init(num_cpus=2)
        handles["model"] = ray.remote(payload.Model).remote()
        return ray.get(handles["model"].predict.remote(1))

    try:
        cold_start(rec, start, expected=1)
        model = handles["model"]

        if rec.wants("sync"):
            lat, ok = sequential(
                lambda i: ray.get(model.predict.remote(i)),
                sizes.sync_calls,
                sizes.warmup,
                lambda i, r: r == i,
            )
            rec.latency("sync_call", lat, ok, api="ray.get(actor.f.remote(x))")

        if rec.wants("pipelined"):
            _pipelined(rec, ray, model)

        if rec.wants("chain"):
            inc, dbl, dec = (ray.remote(f) for f in (payload.inc, payload.dbl, payload.dec))
            lat, ok = sequential(
                lambda i: ray.get(dec.remote(dbl.remote(inc.remote(i)))),
                sizes.chain_calls,
                sizes.warmup,
                lambda i, r: r == payload.chain_expected(i),
            )
            rec.latency("chain3", lat, ok, api="f.remote(g.remote(h.remote(x))), tasks")

        if rec.wants("echo"):
            echo_arrays(rec, lambda a: ray.get(model.echo_array.remote(a)))

        _issue12(rec, ray, model)

        if rec.wants("fanout"):
            shard_cls: Any = ray.remote(payload.Shard)
            shards = [shard_cls.remote() for _ in range(2)]
            ray.get([s.work.remote(0) for s in shards])
            rounds: list[float] = []
            ok = True
            n = sizes.fanout_calls
            for it in range(sizes.fanout_iters + 1):
                base = it * n
                t = time.perf_counter()
                out = ray.get([shards[j % 2].work.remote(base + j) for j in range(n)])
                dt = time.perf_counter() - t
                ok &= out == [base + j for j in range(n)]
                if it:
                    rounds.append(dt)
            rec.value(
                "fanout",
                sorted(rounds)[len(rounds) // 2],
                ok=ok,
                replicas_used=2,
                api="ray.get([replica.f.remote(i) ...]) over 2 actors",
            )
    finally:
        ray.shutdown()


def _issue12(rec: Recorder, ray: Any, model: Any) -> None:
    """The sync-request, sync-pipelined, chain-actor and nn rows (issue 12)."""
    sizes = rec.sizes
    if rec.wants("sync-request"):
        lat, ok = sequential(
            lambda i: ray.get(model.predict.remote(i)),
            sizes.sync_calls,
            sizes.warmup,
            lambda i, r: r == i,
        )
        rec.latency("sync_request", lat, ok, api="ray.get(actor.f.remote(x))")

    if rec.wants("sync-pipelined"):
        sync_pipelined(
            rec,
            lambda todo: ray.get([model.predict.remote(i) for i in todo]),
            api="100 x actor.f.remote(x), then ray.get of the list",
        )

    if rec.wants("chain-actor"):
        lat, ok = sequential(
            lambda i: ray.get(
                model.step_dec.remote(model.step_dbl.remote(model.step_inc.remote(i)))
            ),
            sizes.chain_calls,
            sizes.warmup,
            lambda i, r: r == payload.chain_expected(i),
        )
        rec.latency("chain_actor", lat, ok, api="3 actor method calls passing ObjectRefs")

    if rec.wants("nn"):
        from benchmarks.nn import run_nn

        address = ray.get_runtime_context().gcs_address
        run_nn(
            rec,
            "benchmarks.systems.ray_bench:drive",
            address,
            api="per driver: ray.init(address), its own actor, 100 x .remote(), ray.get",
        )


def drive(
    k: int,
    address: str,
    calls: int,
    window: int,
    ready: Callable[[], None],
    done: Callable[[], None],
) -> bool:
    """One n:n driver process (benchmarks.nn): connects to the running Ray, its own actor."""
    import ray

    ray.init(address=address)
    try:
        actor_cls: Any = ray.remote(payload.Model)
        actor = actor_cls.remote()

        def batch(todo: range) -> list[Any]:
            result: list[Any] = ray.get([actor.predict.remote(i) for i in todo])
            return result

        warm_ok = batch(range(calls, calls + window)) == list(range(calls, calls + window))
        ready()
        _, ok = batches(batch, calls, window, warmup=False)
        done()
        return ok and warm_ok
    finally:
        ray.shutdown()


def _pipelined(rec: Recorder, ray: Any, model: Any) -> None:
    """Ray's documented pattern: submit, and when more than N are pending, ray.wait."""
    sizes = rec.sizes
    n, window = sizes.pipelined_calls, sizes.in_flight
    ray.get([model.predict.remote(i) for i in range(window)])
    pending: list[Any] = []
    total = 0
    t0 = time.perf_counter()
    for i in range(n):
        if len(pending) >= window:
            ready, pending = ray.wait(pending, num_returns=len(pending) - window + 1)
            total += sum(ray.get(ready))
        pending.append(model.predict.remote(i))
    total += sum(ray.get(pending))
    elapsed = time.perf_counter() - t0
    rec.value(
        "pipelined",
        n / elapsed,
        ok=total == n * (n - 1) // 2,
        seconds=elapsed,
        api="ray.wait to keep 100 pending",
    )
