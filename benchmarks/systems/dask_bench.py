"""Dask distributed as its docs recommend.

``LocalCluster(n_workers=2, threads_per_worker=1, processes=True)`` (it binds
127.0.0.1 by default) and a ``Client``. The long-lived model is a Dask actor
(``client.submit(Model, actor=True)``), its calls ``actor.f(x).result()``;
the chain and the fan-out are tasks (``client.submit`` on futures,
``client.map`` + ``client.gather``), the way Dask is meant for DAGs.
"""

from __future__ import annotations

import collections
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


def run(rec: Recorder) -> None:
    import dask
    import distributed

    rec.loop = "tornado on asyncio (Dask's default)"
    rec.versions = {"dask": dask.__version__, "distributed": distributed.__version__}
    sizes = rec.sizes
    state: dict[str, Any] = {}

    def start() -> Any:
        cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True)
        state["cluster"] = cluster
        client = state["client"] = distributed.Client(cluster)
        state["model"] = client.submit(payload.Model, actor=True).result()
        return state["model"].predict(1).result()

    try:
        cold_start(rec, start, expected=1)
        client, model = state["client"], state["model"]

        if rec.wants("sync"):
            lat, ok = sequential(
                lambda i: model.predict(i).result(),
                sizes.sync_calls,
                sizes.warmup,
                lambda i, r: r == i,
            )
            rec.latency("sync_call", lat, ok, api="actor.f(x).result()")

        if rec.wants("pipelined"):
            n, window = sizes.pipelined_calls, sizes.in_flight
            [f.result() for f in [model.predict(i) for i in range(window)]]
            pending: collections.deque[Any] = collections.deque()
            total = 0
            t0 = time.perf_counter()
            for i in range(n):
                if len(pending) >= window:
                    total += pending.popleft().result()
                pending.append(model.predict(i))
            total += sum(f.result() for f in pending)
            elapsed = time.perf_counter() - t0
            rec.value(
                "pipelined",
                n / elapsed,
                ok=total == n * (n - 1) // 2,
                seconds=elapsed,
                api="actor calls, 100 pending (oldest awaited first)",
            )

        if rec.wants("chain"):
            lat, ok = sequential(
                lambda i: client.submit(
                    payload.dec, client.submit(payload.dbl, client.submit(payload.inc, i))
                ).result(),
                sizes.chain_calls,
                sizes.warmup,
                lambda i, r: r == payload.chain_expected(i),
            )
            rec.latency("chain3", lat, ok, api="client.submit on futures, tasks")

        if rec.wants("echo"):
            echo_arrays(rec, lambda a: model.echo_array(a).result())

        _issue12(rec, state)

        if rec.wants("fanout"):
            rounds: list[float] = []
            ok = True
            n = sizes.fanout_calls
            for it in range(sizes.fanout_iters + 1):
                base = it * n
                t = time.perf_counter()
                out = client.gather(client.map(payload.work, range(base, base + n)))
                dt = time.perf_counter() - t
                ok &= out == list(range(base, base + n))
                if it:
                    rounds.append(dt)
            rec.value(
                "fanout",
                sorted(rounds)[len(rounds) // 2],
                ok=ok,
                replicas_used=2,
                api="client.gather(client.map(f, ...)) over 2 worker processes",
            )
    finally:
        if "client" in state:
            state["client"].close()
        if "cluster" in state:
            state["cluster"].close()


def _issue12(rec: Recorder, state: dict[str, Any]) -> None:
    """The sync-request, sync-pipelined, chain-actor and nn rows (issue 12)."""
    sizes = rec.sizes
    model = state["model"]
    if rec.wants("sync-request"):
        lat, ok = sequential(
            lambda i: model.predict(i).result(),
            sizes.sync_calls,
            sizes.warmup,
            lambda i, r: r == i,
        )
        rec.latency("sync_request", lat, ok, api="actor.f(x).result()")

    if rec.wants("sync-pipelined"):
        sync_pipelined(
            rec,
            lambda todo: [f.result() for f in [model.predict(i) for i in todo]],
            api="100 actor calls, then .result() of each",
        )

    if rec.wants("chain-actor"):
        # A Dask actor call takes values, not futures: the driver resolves each step.
        lat, ok = sequential(
            lambda i: model.step_dec(model.step_dbl(model.step_inc(i).result()).result()).result(),
            sizes.chain_calls,
            sizes.warmup,
            lambda i, r: r == payload.chain_expected(i),
        )
        rec.latency("chain_actor", lat, ok, api="3 actor calls, each .result() passed on")

    if rec.wants("nn"):
        from benchmarks.nn import run_nn

        run_nn(
            rec,
            "benchmarks.systems.dask_bench:drive",
            state["cluster"].scheduler_address,
            api="per driver: Client(scheduler), its own actor, 100 calls, .result() of each",
        )


def drive(
    k: int,
    address: str,
    calls: int,
    window: int,
    ready: Callable[[], None],
    done: Callable[[], None],
) -> bool:
    """One n:n driver process (benchmarks.nn): a Client of the running scheduler, its own actor."""
    import distributed

    client = distributed.Client(address)
    try:
        # pure=False: four drivers submitting the same class must get four actors, not one key.
        actor = client.submit(payload.Model, actor=True, pure=False).result()

        def batch(todo: range) -> list[Any]:
            return [f.result() for f in [actor.predict(i) for i in todo]]

        warm_ok = batch(range(calls, calls + window)) == list(range(calls, calls + window))
        ready()
        _, ok = batches(batch, calls, window, warmup=False)
        done()
        return ok and warm_ok
    finally:
        client.close()
