"""Results stay in the cluster until asked for; ``put`` stores a value once; both are freed.

Bytes are counted on the driver's own connection (``Connection.bytes_received``
and ``bytes_sent``), so the tests see what actually crossed it.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import time
from collections.abc import AsyncIterator

import data_support as ds
import numpy as np
import pytest

from mpreg import Client, ClusterUnavailable, Command, Future, StoreFull
from mpreg.host.cluster import LocalCluster
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster

MB = 1_000_000
COUNT = 50 * MB // 8  # float64s in a 50 MB array


@pytest.fixture
async def three_nodes() -> AsyncIterator[LocalCluster]:
    """The driver's node A serves nothing; B serves the functions with dataset b, C with c."""
    async with run_cluster(
        node("A"),
        node("B", functions=ds.FUNCTIONS, resources=("b",)),
        node("C", functions=ds.FUNCTIONS, resources=("c",)),
    ) as cluster:
        yield cluster


def _conn_bytes(client: Client) -> tuple[int, int]:
    conn = client._conn
    assert conn is not None
    return conn.bytes_received, conn.bytes_sent


async def _store(client: Client) -> tuple[int, int]:
    """Bytes and values the cluster's nodes hold for futures, summed."""
    status = await client.status()
    return sum(n.store_bytes for n in status.nodes), sum(n.store_values for n in status.nodes)


async def _until_store(client: Client, expected: tuple[int, int], within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while (held := await _store(client)) != expected:
        assert time.monotonic() < deadline, f"the store holds {held}, expected {expected}"
        gc.collect()
        await asyncio.sleep(0.05)


async def test_a_chain_of_submits_brings_only_the_last_result_to_the_driver(
    three_nodes: LocalCluster,
) -> None:
    async with Client(three_nodes.address, token=three_nodes.token) as client:
        start_in, _ = _conn_bytes(client)
        first = client.submit("make", COUNT, datasets=["b"])
        second = client.submit("double", first, datasets=["c"])
        third = client.submit("double", second, datasets=["b"])
        for future in (first, second, third):
            await asyncio.wait_for(_done(future), 60)
        before_get, _ = _conn_bytes(client)
        assert before_get - start_in < 1 * MB, "a result nobody asked for came to the driver"
        assert third.held >= 50 * MB
        result = await third
        np.testing.assert_array_equal(result, np.arange(COUNT, dtype=np.float64) * 4)
        read = _conn_bytes(client)[0] - start_in
        assert result.nbytes <= read <= result.nbytes * 1.05, read


async def _done(future: Future) -> None:
    """Wait until ``future`` is done, without fetching its value."""
    finished = asyncio.Event()
    future.add_done_callback(lambda _: finished.set())  # on this loop's thread
    await finished.wait()


async def test_a_put_value_is_sent_once_for_fifty_calls(three_nodes: LocalCluster) -> None:
    table = np.ones(20 * MB // 8)
    async with Client(three_nodes.address, token=three_nodes.token) as client:
        _, start_out = _conn_bytes(client)
        stored = client.put(table)
        uses = [client.submit("nbytes", stored, datasets=["b"]) for _ in range(50)]
        assert [await use for use in uses] == [table.nbytes] * 50
        sent = _conn_bytes(client)[1] - start_out
        assert table.nbytes <= sent <= table.nbytes * 1.05, sent
        assert (await stored) is table  # the driver keeps its own value: no fetch


async def test_dropped_futures_and_ended_sessions_free_their_values(
    three_nodes: LocalCluster,
) -> None:
    async with Client(three_nodes.address, token=three_nodes.token) as watcher:
        baseline = await _store(watcher)
        async with Client(three_nodes.address, token=three_nodes.token) as client:
            stored = client.put(np.ones(MB))  # held on A, the driver's node
            made = [
                client.submit("make", MB // 8, datasets=["b"]),  # 1 MB: sent to A, kept there
                client.submit("make", 2 * MB // 8, datasets=["c"]),  # 2 MB: stays on C
            ]
            for future in (stored, *made):
                await asyncio.wait_for(_done(future), 30)
            held_bytes, held_values = await _store(watcher)
            assert held_values == baseline[1] + 3
            assert held_bytes >= baseline[0] + 4 * MB
            del stored, made, future
            await _until_store(watcher, baseline)  # dropped: released
            kept = client.put(np.ones(MB))
            await asyncio.wait_for(_done(kept), 30)
            assert (await _store(watcher))[1] == baseline[1] + 1
        await _until_store(watcher, baseline)  # the session ended: its values went with it


async def test_a_value_the_store_cannot_hold_fails_with_store_full() -> None:
    async with (
        run_cluster(node("small", functions=ds.FUNCTIONS, max_store_bytes=10 * MB)) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):
        with pytest.raises(StoreFull, match="--max-store-mb"):
            await client.put(np.ones(20 * MB // 8))
        with pytest.raises(StoreFull):
            await client.submit("make", 16 * MB // 8)
        # What fits is held, and a request's result (not a future's) is never counted.
        assert await client.submit("total", client.put(np.ones(1000))) == 1000.0
        answer = await client.request([Command("big", "make", [16 * MB // 8], [])])
        assert answer["big"].nbytes == 16 * MB


async def _peer_bytes(client: Client) -> dict[str, int]:
    """Bytes each node has read and written on its links to other members."""
    status = await client.status()
    return {n.node.name: n.peer_bytes_in + n.peer_bytes_out for n in status.nodes}


@pytest.mark.parametrize("how", ["submit", "request"])
async def test_a_value_moves_from_the_node_that_made_it_to_the_node_that_uses_it(
    three_nodes: LocalCluster, how: str
) -> None:
    """make on B -> double on C -> total on B: 50 MB goes B->C and C->B, never through A."""
    expected = float(np.arange(COUNT, dtype=np.float64).sum() * 2)
    async with Client(three_nodes.address, token=three_nodes.token) as client:
        before = await _peer_bytes(client)
        if how == "submit":
            first = client.submit("make", COUNT, datasets=["b"])
            second = client.submit("double", first, datasets=["c"])
            assert await client.submit("total", second, datasets=["b"]) == expected
        else:
            answer = await client.request(
                [
                    Command("first", "make", [COUNT], ["b"]),
                    Command("second", "double", ["first"], ["c"]),
                    Command("third", "total", ["second"], ["b"]),
                ]
            )
            assert answer == {"third": expected}
        moved = {name: count - before[name] for name, count in (await _peer_bytes(client)).items()}
        if how == "submit":
            del first, second
        await _until_store(client, (0, 0))  # every value went once nothing needed it
    assert moved["A"] < 1 * MB, moved  # the driver's node only passed the small calls on
    assert moved["B"] >= 100 * MB and moved["C"] >= 100 * MB, moved  # 50 MB each way


async def test_a_value_lost_with_its_holder_fails_its_users_with_cluster_unavailable(
    three_nodes: LocalCluster,
) -> None:
    async with Client(three_nodes.address, token=three_nodes.token) as client:
        made = client.submit("make", 2 * MB // 8, datasets=["b"])
        await asyncio.wait_for(_done(made), 30)
        assert made.held >= 2 * MB
        os.kill(three_nodes.nodes[1].pid, signal.SIGKILL)  # B, which holds it
        await asyncio.wait_for(three_nodes.nodes[1].process.wait(), 10)
        with pytest.raises(ClusterUnavailable, match="result"):
            await asyncio.wait_for(client.submit("double", made, datasets=["c"]), 20)
        with pytest.raises(ClusterUnavailable):
            await asyncio.wait_for(made, 20)
        # What does not need it still runs.
        assert await client.submit("total", client.put(np.ones(10)), datasets=["c"]) == 10.0
