"""mpreg as its README shows it: ``mpreg.init()`` embedded, then the async Client.

(The issue-12 rows, the sync API against a running cluster and the n:n
drivers, are in ``mpreg_sync``, run between the two phases.)

Two phases. The sync API (``mpreg.init`` / ``mpreg.request``) measures cold
start, idle memory, sync calls, the chain, the echoes and the fan-out. The
embedded cluster's token is private to ``init()``, so the async phase starts
a second cluster with ``mpreg.testing.run_cluster`` and drives it with
``mpreg.Client`` (sequential ``request`` calls, then 100 ``submit`` futures in
flight).
"""

from __future__ import annotations

import time
from typing import Any

from benchmarks.payload import chain_expected, dbl, dec, inc
from benchmarks.record import Recorder, cold_start, echo_arrays, pipelined, sequential


def run(rec: Recorder) -> None:
    import uvloop

    import mpreg
    from benchmarks.systems.mpreg_actors import Model, Shard
    from mpreg import Command

    rec.loop = "uvloop (sync API: client loop in a background thread)"
    rec.versions = {"mpreg": mpreg.__version__, "uvloop": uvloop.__version__}
    sizes = rec.sizes

    def start() -> Any:
        mpreg.init(actors=[Model], functions=[inc, dbl, dec])
        return mpreg.request([Command("p", "predict", [1], ["model"])])["p"]

    try:
        cold_start(rec, start, expected=1)

        if rec.wants("sync"):
            lat, ok = sequential(
                lambda i: mpreg.request([Command("p", "predict", [i], ["model"])])["p"],
                sizes.sync_calls,
                sizes.warmup,
                lambda i, r: r == i,
            )
            rec.latency("sync_call", lat, ok, api="mpreg.request")

        if rec.wants("chain"):

            def chain(i: int) -> Any:
                return mpreg.request(
                    [
                        Command("h", "inc", [i]),
                        Command("g", "dbl", ["h"]),
                        Command("f", "dec", ["g"]),
                    ]
                )["f"]

            lat, ok = sequential(
                chain, sizes.chain_calls, sizes.warmup, lambda i, r: r == chain_expected(i)
            )
            rec.latency("chain3", lat, ok, api="one request of 3 commands, function workers")

        if rec.wants("echo"):
            echo_arrays(
                rec,
                lambda a: mpreg.request([Command("e", "echo_array", [a], ["model"])])["e"],
            )

        if rec.wants("fanout"):
            mpreg.deploy(Shard)
            rounds: list[float] = []
            ok, where = True, set()
            for it in range(sizes.fanout_iters + 1):
                base = it * sizes.fanout_calls
                t = time.perf_counter()
                commands = [
                    Command(f"c{j}", "work", [base + j], ["shards"])
                    for j in range(sizes.fanout_calls)
                ]
                out = mpreg.request(commands)
                dt = time.perf_counter() - t
                ok &= all(out[f"c{j}"] == base + j for j in range(sizes.fanout_calls))
                where |= set(mpreg.last_placement().values())
                if it:  # the first round is the warm-up
                    rounds.append(dt)
            rec.value(
                "fanout",
                sorted(rounds)[len(rounds) // 2],
                ok=ok and len(where) == 2,
                replicas_used=len(where),
                api="one request of 1000 commands",
            )
    finally:
        mpreg.shutdown()

    if any(rec.wants(w) for w in ("sync-request", "sync-pipelined", "chain-actor", "nn")):
        from benchmarks.systems import mpreg_sync

        mpreg_sync.run(rec)

    if rec.wants("sync") or rec.wants("pipelined"):
        uvloop.run(_async_phase(rec))


async def _async_phase(rec: Recorder) -> None:
    import mpreg
    from mpreg import Command, NodeConfig
    from mpreg.testing import run_cluster

    sizes = rec.sizes
    clock = time.perf_counter
    model = "benchmarks.systems.mpreg_actors:Model"
    async with (
        run_cluster(NodeConfig(name="bench", actors=(model,), workers=1)) as cluster,
        mpreg.Client(cluster.address, token=cluster.token) as client,
    ):

        async def call(i: int) -> Any:
            return (await client.request([Command("p", "predict", [i], ["model"])]))["p"]

        if rec.wants("sync"):
            ok = True
            for i in range(sizes.warmup):
                ok &= await call(i) == i
            lat = []
            for i in range(sizes.sync_calls):
                t = clock()
                r = await call(i)
                lat.append(clock() - t)
                ok &= r == i
            rec.latency("sync_call_async", lat, ok, api="await Client.request")

        if rec.wants("pipelined"):

            async def submit(i: int) -> Any:
                return await client.submit("predict", i, datasets=["model"])

            # mpreg's futures API, the counterpart of Ray's actor.f.remote(x).
            await pipelined(rec, submit, api=f"{rec.sizes.in_flight} tasks awaiting Client.submit")
