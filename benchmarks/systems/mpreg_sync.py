"""mpreg's issue-12 rows: the sync API against a running cluster, and n:n drivers.

A user's script runs ``mpreg.init(address, token=...)`` against a cluster
(``mpreg start``); here the cluster is one node process started by this
process (``benchmarks.cluster.ThreadCluster``) with one function worker, the
``Model`` actor (dataset ``model``) and four lane actors (datasets
``nn0``..``nn3``, one per n:n driver). Every call goes through the sync
facade: ``mpreg.request``, ``mpreg.submit``, ``mpreg.get``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from benchmarks.payload import chain_expected
from benchmarks.record import Recorder, batches, sequential, sync_pipelined

MODEL = "benchmarks.systems.mpreg_actors:Model"


def run(rec: Recorder) -> None:
    """The sync-request, sync-pipelined, chain-actor and nn rows."""
    import mpreg
    from benchmarks.cluster import ThreadCluster
    from benchmarks.nn import run_nn
    from benchmarks.systems.mpreg_actors import LANES
    from mpreg import Command, NodeConfig

    sizes = rec.sizes
    config = NodeConfig(name="bench", actors=(MODEL, *LANES), workers=1)
    with ThreadCluster(config) as cluster:
        mpreg.init(cluster.address, token=cluster.token)
        try:
            if rec.wants("sync-request"):
                lat, ok = sequential(
                    lambda i: mpreg.request([Command("p", "predict", [i], ["model"])])["p"],
                    sizes.sync_calls,
                    sizes.warmup,
                    lambda i, r: r == i,
                )
                rec.latency("sync_request", lat, ok, api="mpreg.request, init(address)")

            if rec.wants("sync-pipelined"):

                def batch(todo: range) -> list[Any]:
                    futures = [mpreg.submit("predict", i, datasets=["model"]) for i in todo]
                    result: list[Any] = mpreg.get(futures)
                    return result

                sync_pipelined(rec, batch, api="mpreg.submit x 100, then mpreg.get")

            if rec.wants("chain-actor"):

                def chain(i: int) -> Any:
                    return mpreg.request(
                        [
                            Command("h", "step_inc", [i], ["model"]),
                            Command("g", "step_dbl", ["h"], ["model"]),
                            Command("f", "step_dec", ["g"], ["model"]),
                        ]
                    )["f"]

                lat, ok = sequential(
                    chain, sizes.chain_calls, sizes.warmup, lambda i, r: r == chain_expected(i)
                )
                rec.latency("chain_actor", lat, ok, api="one request of 3 commands on the actor")
        finally:
            mpreg.shutdown()

        if rec.wants("nn"):
            run_nn(
                rec,
                "benchmarks.systems.mpreg_sync:drive",
                (cluster.address, cluster.token),
                api="per driver: mpreg.init(address), mpreg.submit x 100 to its actor, mpreg.get",
            )


def drive(
    k: int,
    args: tuple[str, str],
    calls: int,
    window: int,
    ready: Callable[[], None],
    done: Callable[[], None],
) -> bool:
    """One n:n driver process: its own ``mpreg.init``, batches to actor ``nn{k}``."""
    import mpreg

    address, token = args
    mpreg.init(address, token=token)
    try:
        datasets = [f"nn{k}"]

        def batch(todo: range) -> list[Any]:
            result: list[Any] = mpreg.get(
                [mpreg.submit("predict", i, datasets=datasets) for i in todo]
            )
            return result

        warm_ok = batch(range(calls, calls + window)) == list(range(calls, calls + window))
        ready()
        _, ok = batches(batch, calls, window, warmup=False)
        done()
        return ok and warm_ok
    finally:
        mpreg.shutdown()
