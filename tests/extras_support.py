"""A two-node cluster for the tests of traces, progress, ``call`` and discovery.

Node "a" holds dataset "alpha", node "b" dataset "beta"; each has one
function worker serving :func:`step` and :func:`options`, so two calls
ready together run on the two nodes at once (the router picks the worker
with the fewest outstanding calls).
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from mpreg.host.cluster import LocalCluster
from mpreg.testing import node
from mpreg.transport.loop import new_event_loop


def step(seconds: float, *inputs: Any) -> dict[str, Any]:
    """Sleep, then say which process ran and when (inputs are dependencies' results)."""
    start = time.time()
    time.sleep(seconds)  # ok-sleep: the workload is a slow function
    return {"pid": os.getpid(), "start": start, "end": time.time(), "inputs": len(inputs)}


def options(value: Any = None, timeout: Any = None, datasets: Any = None) -> dict[str, Any]:
    """Its keyword arguments named like mpreg's own options, as it received them."""
    return {"value": value, "timeout": timeout, "datasets": datasets}


@dataclass
class TwoNodes:
    address: str
    token: str
    loop: asyncio.AbstractEventLoop
    cluster: LocalCluster

    def run(self, coro: Any, timeout: float = 60.0) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)


async def _start(cluster: LocalCluster) -> None:
    served = (step, options)
    await cluster.add_node(node("a", functions=served, resources=("alpha",)), join=False)
    peers = (cluster.address,)
    await cluster.add_node(
        node("b", functions=served, resources=("beta",), peers=peers), join=False
    )


def two_nodes() -> Iterator[TwoNodes]:
    """Fixture body: the cluster on a loop of its own thread, stopped after the test."""
    loop = new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="two-nodes", daemon=True)
    thread.start()
    cluster = LocalCluster()
    nodes = TwoNodes("", "", loop, cluster)
    try:
        nodes.run(_start(cluster))
        nodes.address, nodes.token = cluster.address, cluster.token
        yield nodes
    finally:
        nodes.run(cluster.stop())
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=10)
        loop.close()
