"""How fast a generator streams, and what the same items cost as separate calls.

    uv run python -m benchmarks.streams [--items N] [--rounds R]

Starts a cluster of two nodes (A, which the client dials, and B) whose one
function worker each serves ``numbers``; the worker on B is reached by
forwarding. Each round streams N items of 8 bytes and of 10 KiB from A's
worker and from B's (``Client.stream``, window 64), then asks for N/10
items one call each (``Client.submit``, all in flight) for the per-call rate
next to it. Prints the medians over the rounds, items/s and MB/s.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Iterator

from mpreg.driver.client import Client
from mpreg.testing import node, run_cluster


def numbers(count: int, size: int = 0, where: str = "") -> Iterator[bytes]:
    payload = b"x" * size
    for _ in range(count):
        yield payload


def one(size: int = 0, where: str = "") -> bytes:
    return b"x" * size


async def _stream(client: Client, count: int, size: int, datasets: list[str]) -> float:
    started = time.perf_counter()
    seen = 0
    async for _ in client.stream("numbers", count, size, datasets=datasets):
        seen += 1
    assert seen == count
    return count / (time.perf_counter() - started)


async def _calls(client: Client, count: int, size: int, datasets: list[str]) -> float:
    started = time.perf_counter()
    futures = [client.submit("one", size, datasets=datasets) for _ in range(count)]
    for future in futures:
        await future
    return count / (time.perf_counter() - started)


async def main(items: int, rounds: int) -> None:
    async with (
        run_cluster(
            node("A", workers=1, functions=(numbers, one), resources=("here",)),
            node("B", workers=1, functions=(numbers, one), resources=("there",)),
        ) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):
        rates: dict[str, list[float]] = {}
        for _ in range(rounds):
            for where in ("here", "there"):
                for size in (8, 10 * 1024):
                    key = f"stream {size:>6} B, worker on {'A' if where == 'here' else 'B'}"
                    rates.setdefault(key, []).append(await _stream(client, items, size, [where]))
                    key = f"calls  {size:>6} B, worker on {'A' if where == 'here' else 'B'}"
                    rates.setdefault(key, []).append(
                        await _calls(client, items // 10, size, [where])
                    )
    print(f"{items:,} items per stream, {items // 10:,} calls, median of {rounds} rounds")
    for key, values in rates.items():
        rate = statistics.median(values)
        size = int(key.split()[1])
        print(f"  {key}: {rate:>10,.0f} items/s  {rate * size / 1e6:>8.1f} MB/s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--items", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    ns = parser.parse_args()
    asyncio.run(main(ns.items, ns.rounds))
