"""Overload meets backpressure: a node's memory stays bounded when clients outrun workers."""

from __future__ import annotations

import asyncio
import os

import cluster_actors as ca
import pytest

from mpreg import Client, Command
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster

MiB = 1024 * 1024


def _rss(pid: int) -> int:
    with open(f"/proc/{pid}/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


async def test_a_flood_of_large_requests_does_not_grow_the_node_without_bound() -> None:
    config = node("pressure", workers=1, actors=(ca.SlowSink,))
    async with (
        run_cluster(config) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):
        node_pid = cluster.nodes[0].pid
        baseline = _rss(node_pid)
        payload = b"x" * MiB
        flood = asyncio.gather(
            *(
                client.request([Command("t", "take", [payload], ["sink"])], timeout=60)
                for _ in range(150)
            )
        )
        peak = baseline
        while not flood.done():
            peak = max(peak, _rss(node_pid))
            await asyncio.wait({flood}, timeout=0.02)
        results = await flood
    assert [r["t"] for r in results] == [MiB] * 150
    # 150 MiB went through; the node held only a window of it at a time.
    assert peak - baseline < 64 * MiB, f"node grew by {(peak - baseline) // MiB} MiB"
