"""The raw two-hop floor (benchmarks.floor): the same workloads with no framework."""

from __future__ import annotations

import asyncio
import struct
import time
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


def _as_array(raw: Any, like: Any) -> Any:
    if isinstance(like, bytearray):
        return raw
    import numpy as np

    return np.frombuffer(raw, dtype=like.dtype)
