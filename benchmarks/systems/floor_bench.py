"""The raw two-hop floor (benchmarks.floor): the same workloads with no framework."""

from __future__ import annotations

import asyncio
import struct
import time
from collections.abc import Callable
from typing import Any

from benchmarks.floor import ROUND_ROBIN, FloorClient, FloorProcesses
from benchmarks.record import Recorder, idle_memory, make_array, pipelined, same_array

_INT = struct.Struct("!q")


def run(rec: Recorder) -> None:
    import uvloop

    rec.loop = "uvloop"
    rec.versions = {"uvloop": uvloop.__version__}
    procs = FloorProcesses()
    try:
        uvloop.run(_run(rec, procs))
    finally:
        procs.stop()


async def _run(rec: Recorder, procs: FloorProcesses) -> None:

    sizes = rec.sizes
    clock = time.perf_counter
    client = FloorClient()

    t0 = clock()
    port = procs.start_router()
    procs.start_worker(0)
    await client.connect(port)
    first = await client.call(_INT.pack(1))
    rec.value("cold_start", clock() - t0, ok=bytes(first) == _INT.pack(1))
    await asyncio.sleep(sizes.settle_seconds)
    idle_memory(rec)

    async def call(i: int, hops: int = 1, target: int = 0) -> int:
        return _INT.unpack(await client.call(_INT.pack(i), hops=hops, target=target))[0]

    async def sequential(hops: int, n: int) -> tuple[list[float], bool]:
        ok = True
        for i in range(sizes.warmup):
            ok &= await call(i, hops) == i
        lat = []
        for i in range(n):
            t = clock()
            r = await call(i, hops)
            lat.append(clock() - t)
            ok &= r == i
        return lat, ok

    if rec.wants("sync"):
        lat, ok = await sequential(1, sizes.sync_calls)
        rec.latency("sync_call", lat, ok, api="await one call")
        rec.latency("sync_call_async", lat, ok, api="await one call")

    if rec.wants("sync-request"):  # the floor has no sync facade: its one call, again
        lat, ok = await sequential(1, sizes.sync_calls)
        rec.latency("sync_request", lat, ok, api="await one call")

    if rec.wants("sync-pipelined"):
        n = sizes.sync_pipelined_calls
        ok = await _batch(client, range(n, n + sizes.in_flight), 0)
        t0 = clock()
        for base in range(0, n, sizes.in_flight):
            ok &= await _batch(client, range(base, min(base + sizes.in_flight, n)), 0)
        elapsed = clock() - t0
        rec.value("sync_pipelined", n / elapsed, ok=ok, seconds=elapsed, api="gather 100 calls")

    if rec.wants("chain-actor"):  # one worker answers all three steps, as an actor does
        lat, ok = await sequential(3, sizes.chain_calls)
        rec.latency("chain_actor", lat, ok, api="router sends each reply back 3 times")

    if rec.wants("pipelined"):
        await pipelined(rec, call)

    if rec.wants("chain"):
        lat, ok = await sequential(3, sizes.chain_calls)
        rec.latency("chain3", lat, ok, api="router sends each reply back 3 times")

    if rec.wants("echo"):
        for key, nbytes, calls in (
            ("echo_1mib", sizes.echo_small_bytes, sizes.echo_small_calls),
            ("echo_10mib", sizes.echo_large_bytes, sizes.echo_large_calls),
        ):
            arrays = [make_array(nbytes, i) for i in range(calls + 2)]
            ok = True
            lat = []
            for k, array in enumerate(arrays):
                t = clock()
                raw: Any = await client.call(memoryview(array).cast("B"))
                back = _as_array(raw, array)
                dt = clock() - t
                if k >= 2:
                    lat.append(dt)
                ok &= same_array(back, array)
            rec.latency(key, lat, ok, nbytes=nbytes, payload=type(arrays[0]).__name__)

    if rec.wants("fanout"):
        procs.start_worker(1)
        procs.start_worker(2)
        rounds: list[float] = []
        ok = True
        for it in range(sizes.fanout_iters + 1):
            base = it * sizes.fanout_calls
            t = clock()
            out = await asyncio.gather(
                *(call(base + j, target=ROUND_ROBIN) for j in range(sizes.fanout_calls))
            )
            dt = clock() - t
            ok &= out == [base + j for j in range(sizes.fanout_calls)]
            if it:
                rounds.append(dt)
        rec.value("fanout", sorted(rounds)[len(rounds) // 2], ok=ok, replicas_used=2)

    client.close()

    if rec.wants("nn"):  # after the fan-out: lane workers must not join its round robin
        from benchmarks.nn import DRIVERS, run_nn

        for k in range(DRIVERS):
            procs.start_worker(LANE + k)
        run_nn(rec, "benchmarks.systems.floor_bench:drive", procs.port, api="gather 100 calls")


LANE = 10  # n:n driver k calls floor worker LANE + k


async def _batch(client: FloorClient, todo: range, target: int) -> bool:
    """One batch of calls in flight at once; True if every echo came back right."""
    replies = await asyncio.gather(*(client.call(_INT.pack(i), target=target) for i in todo))
    return [_INT.unpack(r)[0] for r in replies] == list(todo)


def drive(
    k: int, port: int, calls: int, window: int, ready: Callable[[], None], done: Callable[[], None]
) -> bool:
    """One n:n driver process (benchmarks.nn): batches to its own floor worker."""
    import uvloop

    async def main() -> bool:
        client = FloorClient()
        await client.connect(port)
        ok = await _batch(client, range(calls, calls + window), LANE + k)
        ready()  # blocks this loop until every driver is ready: nothing else runs on it yet
        for base in range(0, calls, window):
            ok &= await _batch(client, range(base, min(base + window, calls)), LANE + k)
        done()
        client.close()
        return ok

    return uvloop.run(main())


def _as_array(raw: Any, like: Any) -> Any:
    if isinstance(like, bytearray):
        return raw
    import numpy as np

    return np.frombuffer(raw, dtype=like.dtype)
