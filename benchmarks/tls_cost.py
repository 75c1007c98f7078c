"""What TLS costs: call latency, pipelined calls/s and a 10 MB round trip, with and without.

    uv run python -m benchmarks.tls_cost [--calls N] [--rounds R] [--in-flight K] [--mb M]

Starts two one-node clusters side by side on loopback, identical but for TLS
(certificates from :func:`mpreg.host.certs.init_dir` in a temporary
directory), each with one function worker, and alternates between them, in
an order that flips every round, so both see the same machine load. Per
round and cluster: the median latency of N sequential ``echo`` requests,
the rate of N pipelined ``submit("echo")`` with K in flight (and the CPU per
call of node, worker and driver, from /proc: it moves less with the
machine's other load than rates do), and the median
of a few ``echo`` round trips of an M MB bytes value. Prints each round, the
medians, and TLS's ratio to clear text.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from contextlib import AsyncExitStack
from pathlib import Path

from benchmarks.cpu_per_call import cpu_seconds
from mpreg.commands import Command
from mpreg.driver.client import Client
from mpreg.host import certs
from mpreg.testing import node, run_cluster
from mpreg.transport.loop import new_event_loop

ECHO = [Command("e", "echo", ["x"], [])]
KINDS = ("plain", "tls")


async def latency_us(client: Client, calls: int) -> float:
    times = []
    for _ in range(calls):
        started = time.perf_counter()
        await client.request(ECHO)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e6


async def rate(client: Client, pids: list[int], calls: int, in_flight: int) -> tuple[float, float]:
    """Pipelined calls/s, and CPU microseconds per call of ``pids`` (node, worker, driver)."""
    gate = asyncio.Semaphore(in_flight)

    async def one(i: int) -> None:
        async with gate:
            if await client.submit("echo", i) != i:
                raise AssertionError(f"echo({i}) answered wrong")

    before = sum(cpu_seconds(pid) for pid in pids)
    started = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(calls)))
    elapsed = time.perf_counter() - started
    used = sum(cpu_seconds(pid) for pid in pids) - before
    return calls / elapsed, used / calls * 1e6


async def big_ms(client: Client, mb: int, times: int = 5) -> float:
    payload = bytes(mb * 1024 * 1024)
    took = []
    for _ in range(times):
        started = time.perf_counter()
        result = await client.request([Command("b", "echo", [payload], [])])
        took.append(time.perf_counter() - started)
        if len(result["b"]) != len(payload):
            raise AssertionError("the payload came back changed")
    return statistics.median(took) * 1e3


async def measure(args: argparse.Namespace, tls_dir: Path) -> dict[str, list[tuple[float, ...]]]:
    results: dict[str, list[tuple[float, ...]]] = {kind: [] for kind in KINDS}
    async with AsyncExitStack() as stack:
        clients: dict[str, tuple[Client, list[int]]] = {}
        for kind in KINDS:
            on = kind == "tls"
            files = {"tls_ca": str(tls_dir / "ca.crt") if on else ""}
            for who, field in (("node", "node"), ("client", "client")):
                files[f"{field}_cert"] = str(tls_dir / f"{who}.crt") if on else ""
                files[f"{field}_key"] = str(tls_dir / f"{who}.key") if on else ""
            config = node(
                kind,
                workers=1,
                tls_cert=files["node_cert"],
                tls_key=files["node_key"],
                tls_ca=files["tls_ca"],
            )
            cluster = await stack.enter_async_context(run_cluster(config))
            client = Client(
                cluster.address,
                token=cluster.token,
                tls_cert=files["client_cert"],
                tls_key=files["client_key"],
                tls_ca=files["tls_ca"],
            )
            await stack.enter_async_context(client)
            status = await client.status()
            pids = [cluster.nodes[0].pid, status.endpoints[0].pid, os.getpid()]
            await latency_us(client, 50)  # warm: workers started, code paths hot
            clients[kind] = (client, pids)
        for r in range(args.rounds):
            for kind in KINDS if r % 2 == 0 else KINDS[::-1]:
                client, pids = clients[kind]
                lat = await latency_us(client, args.calls // 4)
                rps, cpu = await rate(client, pids, args.calls, args.in_flight)
                row = (lat, rps, cpu, await big_ms(client, args.mb))
                results[kind].append(row)
                print(
                    f"round {r + 1} {kind:>5}: {row[0]:6.0f} us/call  {row[1]:7.0f} calls/s "
                    f"({row[2]:5.1f} us CPU each)  {args.mb} MB round trip {row[3]:6.1f} ms",
                    flush=True,
                )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=4000)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--in-flight", type=int, default=100)
    parser.add_argument("--mb", type=int, default=10)
    args = parser.parse_args()
    loop = new_event_loop()
    print(f"loop: {type(loop).__module__}; load average {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        certs.init_dir(Path(tmp), hosts=())
        try:
            results = loop.run_until_complete(measure(args, Path(tmp)))
        finally:
            loop.close()
    medians = {
        kind: [statistics.median(col) for col in zip(*rows, strict=True)]
        for kind, rows in results.items()
    }
    print()
    header = ("us/call", "calls/s", "CPU us/call", f"{args.mb} MB ms")
    print(f"{'median':>9} " + " ".join(f"{h:>12}" for h in header))
    for kind in KINDS:
        print(f"{kind:>9} " + " ".join(f"{v:12.1f}" for v in medians[kind]))
    ratios = [t / p for t, p in zip(medians["tls"], medians["plain"], strict=True)]
    print(f"{'tls/plain':>9} " + " ".join(f"{v:12.2f}" for v in ratios))


if __name__ == "__main__":
    main()
