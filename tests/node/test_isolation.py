"""A hung worker or peer delays only the work routed to it.

An actor's process, or a whole peer node, is stopped with SIGSTOP while one
client floods it with large calls. The flood stalls (and the node stops reading
that client once its bound is queued); meanwhile other clients, old and new,
call another actor with low latency, and the node's memory stays bounded.
SIGCONT lets the flood drain; calls given a short deadline fail by it, never run.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import pytest
from restart_support import until

import mpreg
from mpreg import Client, Command, DeadlineExceeded
from mpreg.config import DEFAULT_MAX_QUEUED_BYTES_PER_CLIENT
from mpreg.status import rss_bytes as _rss
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster

MiB = 1 << 20
FLOOD = 64  # calls of 1 MiB each: 64 MiB, four times what the node queues for one client
HELD = DEFAULT_MAX_QUEUED_BYTES_PER_CLIENT // MiB  # the flood's calls the node takes: its bound
MEASURE = 2.0  # seconds of steady calls timed while the flood is stuck
P99 = 0.5  # seconds: the latency a stall elsewhere may not push other calls past
# What the flood may add to the node: the flooder's bound (16 MiB) and the request
# that crossed it (1 MiB); of those, the bytes written towards the hung process and
# not yet taken by the kernel, copied into the transport's buffer (at most
# WINDOW_BYTES, 8 MiB, plus one call); one frame half read (1 MiB). ~27 MiB; the
# flood itself is 64 MiB, so a node that held it would pass this bound.
RSS_GROWTH = 40 * MiB


@mpreg.actor(datasets=["stalled"])
class Stalled:
    """The actor whose process (or node) is stopped; counts the calls it ran."""

    def __init__(self) -> None:
        self.ran = 0

    def take(self, payload: bytes) -> int:
        self.ran += 1
        return len(payload)

    def count(self) -> int:
        return self.ran


@mpreg.actor(datasets=["lively"])
class Lively:
    """The actor other clients keep calling."""

    def echo(self, n: int) -> int:
        return n


def _p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@dataclass
class Service:
    """What the other clients saw while the flood was stuck."""

    steady: list[float] = field(default_factory=list)  # latency of each call, seconds
    newcomer: list[float] = field(default_factory=list)  # the first includes connecting
    peak_rss: int = 0


async def _serve_others(address: str, token: str, steady: Client, node_pid: int) -> Service:
    """Call Lively for ``MEASURE`` seconds; halfway, a new client connects and calls it too."""
    seen = Service(peak_rss=_rss(node_pid))

    async def newcomer() -> None:
        began = time.perf_counter()
        async with Client(address, token=token) as late:
            for i in range(20):
                await late.request([Command("e", "echo", [i], ["lively"])], timeout=10)
                seen.newcomer.append(time.perf_counter() - began)
                began = time.perf_counter()

    late: asyncio.Task[None] | None = None
    start = time.perf_counter()
    i = 0
    while time.perf_counter() - start < MEASURE:
        if late is None and time.perf_counter() - start > MEASURE / 2:
            late = asyncio.ensure_future(newcomer())
        began = time.perf_counter()
        assert await steady.request([Command("e", "echo", [i], ["lively"])], timeout=10) == {"e": i}
        seen.steady.append(time.perf_counter() - began)
        seen.peak_rss = max(seen.peak_rss, _rss(node_pid))
        i += 1
    assert late is not None
    await late
    return seen


async def _isolated(
    address: str, token: str, node_pid: int, stop_pid: Callable[[Client], Awaitable[int]]
) -> None:
    """Stop the process ``stop_pid`` names, flood Stalled, check everyone else is served."""
    async with (
        Client(address, token=token) as flooder,
        Client(address, token=token) as steady,
    ):
        # Warm both paths: every process serves before anything is stopped.
        assert await flooder.request([Command("w", "take", [b""], ["stalled"])]) == {"w": 0}
        assert await steady.request([Command("w", "echo", [0], ["lively"])]) == {"w": 0}
        hung = await stop_pid(steady)
        baseline = _rss(node_pid)
        payload = b"x" * MiB
        os.kill(hung, signal.SIGSTOP)
        try:
            flood = asyncio.gather(
                *(
                    flooder.request([Command("t", "take", [payload], ["stalled"])], timeout=120)
                    for _ in range(FLOOD)
                )
            )

            async def flooder_held() -> bool:
                # The node queued the flooder's bound of calls: it stopped reading it.
                status = await steady.status()
                return next(n for n in status.nodes if n.pid == node_pid).in_flight >= HELD

            await until(flooder_held, timeout=30)
            expiring = [
                asyncio.ensure_future(
                    steady.request([Command("x", "take", [b"x"], ["stalled"])], timeout=1.0)
                )
                for _ in range(3)
            ]
            seen = await _serve_others(address, token, steady, node_pid)
            expired = await asyncio.gather(*expiring, return_exceptions=True)
            assert not flood.done()  # still stuck: the measure was taken during the stall
        finally:
            os.kill(hung, signal.SIGCONT)
        results = await asyncio.wait_for(flood, 60)
        assert [r["t"] for r in results] == [MiB] * FLOOD
        assert all(isinstance(e, DeadlineExceeded) for e in expired), expired
        # Every flood call ran once, the warm-up too; the expired calls never ran.
        ran = await steady.request([Command("n", "count", [], ["stalled"])])
        assert ran == {"n": FLOOD + 1}

        async def drained() -> bool:
            return all(n.in_flight == 0 for n in (await steady.status()).nodes)

        await until(drained, timeout=30)
    print(
        f"\nstalled: steady p99 {_p99(seen.steady) * 1e3:.1f} ms over {len(seen.steady)} calls, "
        f"newcomer max {max(seen.newcomer) * 1e3:.1f} ms, "
        f"node grew {(seen.peak_rss - baseline) / MiB:.1f} MiB"
    )
    assert len(seen.newcomer) == 20
    assert _p99(seen.steady) < P99 and max(seen.newcomer) < P99
    assert seen.peak_rss - baseline < RSS_GROWTH


async def _stalled_pid(client: Client) -> int:
    status = await client.status()
    return next(e.pid for e in status.endpoints if e.label == "Stalled")


async def _hung_worker() -> None:
    config = node("iso", workers=0, actors=(Stalled, Lively))
    async with run_cluster(config) as cluster:
        await _isolated(cluster.address, cluster.token, cluster.nodes[0].pid, _stalled_pid)


async def _hung_peer() -> None:
    # Isolation, not failure detection, is under test here (tests/node/test_membership.py
    # has a hung peer declared dead): the stall must outlast no probe.
    slow_detection = {"probe_interval": 60.0, "suspect_timeout": 60.0}
    head = node("n1", workers=0, actors=(Lively,), **slow_detection)
    peer = node("n2", workers=0, actors=(Stalled,), **slow_detection)
    async with run_cluster(head, peer) as cluster:
        n2 = cluster.nodes[1].pid

        async def whole_node(client: Client) -> int:
            return n2  # the node process itself: its actor runs on, unreachable

        await _isolated(cluster.address, cluster.token, cluster.nodes[0].pid, whole_node)


# The nodes run their own loops; the client's is not what is under test, so these
# run once (not on both test loops) to keep the suite fast.


@pytest.mark.timeout(120)
def test_a_hung_actor_process_delays_only_the_calls_routed_to_it() -> None:
    asyncio.run(_hung_worker())


@pytest.mark.timeout(120)
def test_a_hung_peer_node_delays_only_the_calls_routed_to_it() -> None:
    asyncio.run(_hung_peer())
