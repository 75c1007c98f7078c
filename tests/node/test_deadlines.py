"""Deadlines and cancellation reach the process that runs a call (real nodes and workers)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import cluster_actors as ca
import pytest

from mpreg import Client, Command, DeadlineExceeded
from mpreg.host.cluster import LocalCluster
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster

TIMED = ["timed"]


@pytest.fixture
async def timed() -> AsyncIterator[LocalCluster]:
    async with run_cluster(node("timed", workers=0, actors=(ca.Timed,))) as cluster:
        yield cluster


async def _counts(client: Client) -> dict[str, int]:
    result = await client.request([Command("c", "counts", [], TIMED)], timeout=10)
    counts: dict[str, int] = result["c"]
    return counts


async def _eventually(client: Client, check: str, want: int, within: float = 3.0) -> None:
    deadline = time.monotonic() + within
    while (counts := await _counts(client))[check] != want:
        assert time.monotonic() < deadline, f"{check} is {counts[check]}, not {want}: {counts}"
        await asyncio.sleep(0.02)  # ok-sleep: polling the actor's counters


async def _late(client: Client, fun: str, seconds: float, timeout: float) -> float:
    start = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        await client.request([Command("s", fun, [seconds], TIMED)], timeout=timeout)
    return time.monotonic() - start


async def test_a_running_async_method_is_cancelled_at_its_deadline(timed: LocalCluster) -> None:
    async with Client(timed.address, token=timed.token) as client:
        took = await _late(client, "asleep", 2.0, timeout=0.3)
        assert took < 0.6, f"DeadlineExceeded after {took:.3f}s"
        start = time.monotonic()
        await _eventually(client, "cancelled", 1)
        assert time.monotonic() - start < 0.5  # the actor is free at once
        counts = await _counts(client)
    assert counts["started"] == 1 and counts["finished"] == 0


async def test_a_sync_methods_expired_queue_mates_never_run(timed: LocalCluster) -> None:
    async with Client(timed.address, token=timed.token) as client:
        slow = asyncio.ensure_future(_late(client, "sleep", 2.0, timeout=0.3))
        await asyncio.sleep(0.05)  # ok-sleep: the slow call reaches the actor first
        mates = [asyncio.ensure_future(_late(client, "sleep", 0.01, timeout=0.3)) for _ in range(5)]
        took = await slow
        assert took < 0.6, f"DeadlineExceeded after {took:.3f}s"
        assert max(await asyncio.gather(*mates)) < 0.6
        # Answered once the 2 s call ends: the queue-mates expired without running.
        counts = await _counts(client)
    assert counts["started"] == 1 and counts["finished"] == 1


async def test_cancelling_a_task_cancels_its_running_coroutine(timed: LocalCluster) -> None:
    async with Client(timed.address, token=timed.token) as client:
        future = client.submit("asleep", 30.0, datasets=TIMED)
        await _eventually(client, "started", 1)
        assert future.cancel()
        await _eventually(client, "cancelled", 1)


async def test_a_cancelled_call_waiting_behind_a_sync_one_in_its_process_never_runs(
    timed: LocalCluster, tmp_path: Path
) -> None:
    flag = tmp_path / "running"
    async with Client(timed.address, token=timed.token) as client:
        running = client.submit("sleep_flagged", str(flag), 0.5, datasets=TIMED)
        behind = client.submit("sleep", 0.5, datasets=TIMED)  # sent too: it waits in the process
        async with asyncio.timeout(10):
            while not flag.exists():  # noqa: ASYNC110 - polling a file the actor writes
                await asyncio.sleep(0.01)  # ok-sleep: polling for the flag, bounded
        assert behind.cancel()
        await running
        await _eventually(client, "finished", 1)
        await asyncio.sleep(0.7)  # ok-sleep: time in which the dropped call would have run
        counts = await _counts(client)
        assert (counts["started"], counts["finished"]) == (1, 1), counts


async def test_a_client_that_goes_away_cancels_its_running_calls(timed: LocalCluster) -> None:
    async with Client(timed.address, token=timed.token) as leaving:
        future = leaving.submit("asleep", 30.0, datasets=TIMED)
        async with Client(timed.address, token=timed.token) as client:
            await _eventually(client, "started", 1)
    await asyncio.gather(future, return_exceptions=True)  # failed by the close
    async with Client(timed.address, token=timed.token) as client:
        await _eventually(client, "cancelled", 1)


async def test_a_cancel_reaches_a_call_forwarded_to_another_node() -> None:
    async with (
        run_cluster(
            node("front", workers=0), node("back", workers=0, actors=(ca.Timed,))
        ) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):
        future = client.submit("asleep", 30.0, datasets=TIMED)
        await _eventually(client, "started", 1)
        assert future.cancel()
        await _eventually(client, "cancelled", 1)
