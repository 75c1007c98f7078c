"""What the per-call metrics cost: pipelined calls/s with them on and off, in one run.

    uv run python -m benchmarks.metrics_cost [--calls N] [--rounds R] [--in-flight K]

Starts two one-node clusters side by side, identical but for
``NodeConfig.metrics`` (on in one, off in the other), each with one function
worker, and alternates between them: round r runs ``client.submit("echo", i)``
N times with K in flight against each, in an order that flips every round, so
both see the same machine load over the run. Prints each round, the medians
of each, the CPU per call of the node and of all three processes (from
/proc, Linux only), and the cost two ways: in throughput (the median of the
rounds' on/off ratios) and in CPU per call (which the machine's other load
moves far less than wall-clock rates).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass

from benchmarks.cpu_per_call import cpu_seconds
from mpreg.driver.client import Client
from mpreg.node.calls import InFlight, ignore_answer
from mpreg.node.metrics import CallMetrics
from mpreg.protocol.codec import Blob
from mpreg.protocol.messages import Call
from mpreg.testing import LocalCluster, node, run_cluster
from mpreg.transport.loop import new_event_loop


def done_ns(enabled: bool, calls: int = 200_000) -> float:
    """Nanoseconds per ``CallMetrics.done`` (what a node adds per answered call)."""
    metrics = CallMetrics(enabled)
    result = Blob([b"x" * 16])
    records = []
    for i in range(100):  # 100 calls in flight over 4 endpoints
        record = InFlight(Call(i, "echo", result), frozenset(), 0, ignore_answer, None)  # type: ignore[arg-type]
        record.endpoint_id = f"e{i % 4}"
        record.nbytes = 16
        record.started = time.perf_counter()
        records.append(record)
    started = time.perf_counter()
    for i in range(calls):
        metrics.done(records[i % 100], result, None)
    return (time.perf_counter() - started) / calls * 1e9


@dataclass(frozen=True)
class Round:
    rate: float  # calls/s
    node_cpu: float  # node process CPU seconds per call
    cpu: float  # driver + node + worker CPU seconds per call


async def one_round(client: Client, pids: list[int], calls: int, in_flight: int) -> Round:
    """``calls`` pipelined echo calls; ``pids``: node, worker, then this driver."""
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with gate:
            if await client.submit("echo", i) != i:
                raise AssertionError(f"echo({i}) answered wrong")

    before = [cpu_seconds(pid) for pid in pids]
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    elapsed = time.perf_counter() - started
    used = [cpu_seconds(pid) - was for pid, was in zip(pids, before, strict=True)]
    return Round(calls / elapsed, used[0] / calls, sum(used) / calls)


async def measure(calls: int, rounds: int, in_flight: int) -> dict[str, list[Round]]:
    results: dict[str, list[Round]] = {"on": [], "off": []}
    async with AsyncExitStack() as stack:
        clients: dict[str, tuple[Client, list[int]]] = {}
        for name, enabled in (("on", True), ("off", False)):
            cluster: LocalCluster = await stack.enter_async_context(
                run_cluster(node(f"metrics-{name}", workers=1, metrics=enabled))
            )
            client = await stack.enter_async_context(Client(cluster.address, token=cluster.token))
            status = await client.status()
            pids = [cluster.nodes[0].pid, status.endpoints[0].pid, os.getpid()]
            clients[name] = (client, pids)
            await one_round(client, pids, min(2000, calls), in_flight)  # warm-up
        for r in range(rounds):
            order = ("on", "off") if r % 2 == 0 else ("off", "on")
            for name in order:
                client, pids = clients[name]
                result = await one_round(client, pids, calls, in_flight)
                results[name].append(result)
                print(f"  round {r + 1:2d} {name:3s} {figures(result)}")
    return results


def figures(r: Round) -> str:
    return (
        f"{r.rate:8,.0f} calls/s, CPU per call: node {r.node_cpu * 1e6:5.1f} us, "
        f"all three {r.cpu * 1e6:5.1f} us"
    )


def median_round(rounds: list[Round]) -> Round:
    return Round(*(statistics.median(getattr(r, f) for r in rounds) for f in Round.__annotations__))


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metrics_cost")
    parser.add_argument("--calls", type=int, default=10_000, help="calls per round and cluster")
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--in-flight", type=int, default=100)
    ns = parser.parse_args()
    loop = new_event_loop()
    print(f"loop: {type(loop).__module__}; load average {os.getloadavg()[0]:.2f}")
    try:
        results = loop.run_until_complete(measure(ns.calls, ns.rounds, ns.in_flight))
    finally:
        loop.close()
    on, off = median_round(results["on"]), median_round(results["off"])
    # Each round's on/off pair ran back to back: their ratio cancels slow drifts in load.
    paired = statistics.median(
        a.rate / b.rate for a, b in zip(results["on"], results["off"], strict=True)
    )
    print(f"median of {ns.rounds} rounds, {ns.calls:,} calls each, {ns.in_flight} in flight:")
    print(f"  metrics on  {figures(on)}")
    print(f"  metrics off {figures(off)}")
    print(f"  CallMetrics.done: {done_ns(True):.0f} ns per call on, {done_ns(False):.0f} ns off")
    print(f"cost in throughput (1 - median of the rounds' on/off ratios): {1 - paired:.1%}")
    # Pipelined small calls are CPU-bound on 2 cores: the extra CPU per call is
    # the cost in throughput, and CPU time does not move with the machine's load.
    print(f"cost in CPU per call (driver + node + worker): {on.cpu / off.cpu - 1:.1%}")
    print(f"load average {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
