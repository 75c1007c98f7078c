"""CPU time per small call in each process (driver, node, worker), from /proc.

    uv run python -m benchmarks.cpu_per_call [--calls N] [--in-flight K] [--api NAME ...]
        [--lanes on|off|both]

One node with one function worker. Three ways to call its ``echo``:

- ``async``: ``client.submit("echo", i)`` with K calls in flight (the async Client);
- ``sync-submit``: K x ``mpreg.submit("echo", i)`` then ``mpreg.get``, repeated
  (the sync facade, ``mpreg.init(address)``);
- ``sync-request``: ``mpreg.request`` of one command, one after another (N/4 calls).

Each runs with direct lanes (the driver calls the worker process itself, the
node only answers which process) and without them (every call through the
node), as ``--lanes`` says (default both).

Prints calls/s and the user+system CPU each process spent per call: which
stage bounds throughput on a 2-core machine. The sync rows split the driver
by thread (the caller's thread, the facade's ``mpreg-client`` loop thread).
Linux only (reads /proc/PID/stat).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time

from benchmarks.cpu_sync import Measured, cpu_seconds, measure_sync
from mpreg.driver.client import Client
from mpreg.testing import node, run_cluster
from mpreg.transport.loop import new_event_loop

APIS = ("async", "sync-submit", "sync-request")


async def measure(calls: int, in_flight: int, lanes: bool) -> tuple[float, dict[str, float]]:
    config = node("cpu", workers=1)
    async with (
        run_cluster(config) as cluster,
        Client(cluster.address, token=cluster.token, lanes=lanes) as client,
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


def measure_async(calls: int, in_flight: int, lanes: bool) -> Measured:
    loop = new_event_loop()
    try:
        rate, per_call = loop.run_until_complete(measure(calls, in_flight, lanes))
    finally:
        loop.close()
    return Measured(rate, per_call)


def show(name: str, m: Measured, in_flight: int) -> None:
    one = name.startswith("sync request")
    unit = "calls/s one at a time" if one else f"calls/s, {in_flight} at a time"
    print(f"{name}: {m.rate:,.0f} {unit}")
    for what, seconds in m.per_call.items():
        print(f"  {what:34s} {seconds * 1e6:6.1f} us CPU per call")
    total = sum(v for k, v in m.per_call.items() if ":" not in k)
    print(f"  {'all three processes':34s} {total * 1e6:6.1f} us CPU per call")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.cpu_per_call")
    parser.add_argument("--calls", type=int, default=40_000)
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument(
        "--api",
        choices=APIS,
        nargs="+",
        default=list(APIS),
        help="which ways to call (default all)",
    )
    parser.add_argument(
        "--lanes", choices=("on", "off", "both"), default="both", help="direct lanes (default both)"
    )
    ns = parser.parse_args()
    which = tuple(a.removeprefix("sync-") for a in ns.api if a.startswith("sync-"))
    for lanes in {"on": (True,), "off": (False,), "both": (True, False)}[ns.lanes]:
        how = "lanes" if lanes else "through the node"
        if "async" in ns.api:
            measured = measure_async(ns.calls, ns.in_flight, lanes)
            show(f"async client.submit, {how}", measured, ns.in_flight)
        if which:
            for name, m in measure_sync(ns.calls, ns.in_flight, which, lanes=lanes).items():
                show(f"{name}, {how}", m, ns.in_flight)


if __name__ == "__main__":
    main()
