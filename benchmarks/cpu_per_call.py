"""CPU time per small call in each process (driver, node, worker), from /proc.

    uv run python -m benchmarks.cpu_per_call [--calls N] [--in-flight K]

Runs ``client.submit("echo", i)`` with K calls in flight against a one-node
cluster with one function worker and prints calls/s and the user+system CPU
each process spent per call: which stage bounds pipelined throughput on a
2-core machine. Linux only (reads /proc/PID/stat).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from mpreg.driver.client import Client
from mpreg.testing import node, run_cluster
from mpreg.transport.loop import new_event_loop


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def measure(calls: int, in_flight: int) -> tuple[float, dict[str, float]]:
    config = node("cpu", workers=1)
    async with (
        run_cluster(config) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):
        status = await client.status()
        pids = {
            "driver": os.getpid(),
            "node": cluster.nodes[0].pid,
            "worker": status.endpoints[0].pid,
        }
        gate = asyncio.Semaphore(in_flight)

        async def one(i: int) -> None:
            async with gate:
                assert await client.submit("echo", i) == i

        await asyncio.gather(*(one(i) for i in range(min(2000, calls))))  # warm-up
        before = {name: cpu_seconds(pid) for name, pid in pids.items()}
        started = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(calls)))
        elapsed = time.perf_counter() - started
        after = {name: cpu_seconds(pid) for name, pid in pids.items()}
    return calls / elapsed, {name: (after[name] - before[name]) / calls for name in pids}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu_per_call")
    parser.add_argument("--calls", type=int, default=40_000)
    parser.add_argument("--in-flight", type=int, default=100)
    ns = parser.parse_args()
    loop = new_event_loop()
    try:
        rate, per_call = loop.run_until_complete(measure(ns.calls, ns.in_flight))
    finally:
        loop.close()
    print(f"{rate:,.0f} calls/s with {ns.in_flight} in flight")
    for name, seconds in per_call.items():
        print(f"  {name:6s} {seconds * 1e6:5.1f} us CPU per call")


if __name__ == "__main__":
    main()
