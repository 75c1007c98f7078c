"""What the per-call metrics cost: pipelined calls/s with them on and off, in one run.

    uv run python -m benchmarks.metrics_cost [--calls N] [--rounds R] [--in-flight K]

Starts two one-node clusters side by side, identical but for
``NodeConfig.metrics`` (on in one, off in the other), each with one function
worker, and alternates between them: round r runs ``client.submit("echo", i)``
N times with K in flight against each, in an order that flips every round, so
both see the same machine load over the run. Prints each round, the median
calls/s of each, the node's CPU per call (from /proc, Linux only) and the
cost: 1 - on/off.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from contextlib import AsyncExitStack

from benchmarks.cpu_per_call import cpu_seconds
from mpreg.driver.client import Client
from mpreg.node.calls import InFlight, ignore_answer
from mpreg.node.metrics import CallMetrics
from mpreg.protocol.codec import Blob
from mpreg.protocol.messages import Call
from mpreg.testing import LocalCluster, node, run_cluster
from mpreg.transport.loop import new_event_loop


def figures(rate: float, cpu: float) -> str:
    return f"{rate:8,.0f} calls/s, node {cpu * 1e6:5.1f} us CPU per call"


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


async def one_round(
    client: Client, node_pid: int, calls: int, in_flight: int
) -> tuple[float, float]:
    """(calls/s, node CPU seconds per call) of ``calls`` pipelined echo calls."""
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with gate:
            if await client.submit("echo", i) != i:
                raise AssertionError(f"echo({i}) answered wrong")

    cpu_before = cpu_seconds(node_pid)
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    elapsed = time.perf_counter() - started
    return calls / elapsed, (cpu_seconds(node_pid) - cpu_before) / calls


async def measure(calls: int, rounds: int, in_flight: int) -> dict[str, list[tuple[float, float]]]:
    results: dict[str, list[tuple[float, float]]] = {"on": [], "off": []}
    async with AsyncExitStack() as stack:
        clients: dict[str, tuple[Client, int]] = {}
        for name, enabled in (("on", True), ("off", False)):
            cluster: LocalCluster = await stack.enter_async_context(
                run_cluster(node(f"metrics-{name}", workers=1, metrics=enabled))
            )
            client = await stack.enter_async_context(Client(cluster.address, token=cluster.token))
            clients[name] = (client, cluster.nodes[0].pid)
            await one_round(client, cluster.nodes[0].pid, min(2000, calls), in_flight)  # warm-up
        for r in range(rounds):
            order = ("on", "off") if r % 2 == 0 else ("off", "on")
            for name in order:
                client, pid = clients[name]
                rate, cpu = await one_round(client, pid, calls, in_flight)
                results[name].append((rate, cpu))
                print(f"  round {r + 1} {name:3s} {figures(rate, cpu)}")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.metrics_cost")
    parser.add_argument("--calls", type=int, default=20_000, help="calls per round and cluster")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--in-flight", type=int, default=100)
    ns = parser.parse_args()
    loop = new_event_loop()
    print(f"loop: {type(loop).__module__}; load average {os.getloadavg()[0]:.2f}")
    try:
        results = loop.run_until_complete(measure(ns.calls, ns.rounds, ns.in_flight))
    finally:
        loop.close()
    on = statistics.median(rate for rate, _ in results["on"])
    off = statistics.median(rate for rate, _ in results["off"])
    cpu_on = statistics.median(cpu for _, cpu in results["on"])
    cpu_off = statistics.median(cpu for _, cpu in results["off"])
    print(f"median of {ns.rounds} rounds, {ns.calls:,} calls each, {ns.in_flight} in flight:")
    print(f"  metrics on  {figures(on, cpu_on)}")
    print(f"  metrics off {figures(off, cpu_off)}")
    print(f"  CallMetrics.done: {done_ns(True):.0f} ns per call on, {done_ns(False):.0f} ns off")
    cost = 1 - on / off
    print(f"cost: {cost:.1%} of throughput ({'under' if cost < 0.05 else 'NOT under'} 5%)")


if __name__ == "__main__":
    main()
