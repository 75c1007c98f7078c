"""Streams through real nodes: items in order under credit, early exits, errors, two nodes."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import stream_actors as sa
from restart_support import until

import mpreg
from mpreg import ActorDiedError, Client, Command, RemoteError, UsageError
from mpreg.host.cluster import LocalCluster
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster

ROWS = ["rows"]
WINDOW = 32
ITEMS = 10_000
ITEM_BYTES = 10 * 1024  # 100 MB streamed in all: buffering it anywhere would show in RSS
RSS_SLACK = 25 * 2**20


@pytest.fixture
async def one() -> AsyncIterator[LocalCluster]:
    async with run_cluster(node("A", workers=1, actors=(sa.Rows,), functions=(sa.count_up,))) as c:
        yield c


@pytest.fixture
async def two() -> AsyncIterator[LocalCluster]:
    """The client dials A; the generator actor lives on B only."""
    async with run_cluster(node("A", workers=1), node("B", workers=0, actors=(sa.Rows,))) as c:
        yield c


async def _progress(client: Client) -> dict[str, int]:
    answer = await client.request([Command("p", "progress", [], ROWS)])
    return answer["p"]  # type: ignore[no-any-return]


async def _node_rss(client: Client) -> int:
    return (await client.status()).nodes[0].rss_bytes


async def _rows_in_flight(client: Client) -> int:
    return sum(e.in_flight for e in (await client.status()).endpoints if e.label == "Rows")


async def test_a_slow_consumer_pauses_the_producer_and_memory_stays_bounded(
    one: LocalCluster,
) -> None:
    async with Client(one.address, token=one.token) as client:
        seen: list[int] = []
        rss: dict[str, tuple[int, int]] = {}
        async with client.stream("rows", ITEMS, ITEM_BYTES, datasets=ROWS, window=WINDOW) as items:
            async for index, payload in items:
                seen.append(index)
                assert len(payload) == ITEM_BYTES
                if index == 100:
                    # The consumer stops reading for a second: the producer must stop too.
                    with pytest.raises(TimeoutError):
                        async with asyncio.timeout(1.0):
                            while True:
                                made = (await _progress(client))["made"]
                                assert made <= len(seen) + WINDOW
                    # ... with its window (nearly: credit returns in quarters) full.
                    made = (await _progress(client))["made"]
                    assert len(seen) + WINDOW - WINDOW // 4 <= made <= len(seen) + WINDOW
                    assert await _rows_in_flight(client) == 1  # an open stream is load
                if index in (1_000, ITEMS - 500):
                    state = await _progress(client)
                    rss[str(index)] = (state["rss"], await _node_rss(client))
                    assert state["made"] <= len(seen) + WINDOW
                if index % 1_000 == 0:
                    await asyncio.sleep(0.01)  # ok-sleep: the slow consumer's work
        assert seen == list(range(ITEMS))
        (worker_early, node_early), (worker_late, node_late) = rss.values()
        assert worker_late - worker_early < RSS_SLACK, rss
        assert node_late - node_early < RSS_SLACK, rss
        assert (await _progress(client))["finished"] == 1
        await until(lambda: _idle(client))


async def _idle(client: Client) -> bool:
    return await _rows_in_flight(client) == 0


async def test_break_cancels_the_producer_its_finally_runs_and_the_endpoint_is_free(
    one: LocalCluster, tmp_path: Path
) -> None:
    marker = tmp_path / "closed"
    async with Client(one.address, token=one.token) as client:
        async with client.stream("forever", str(marker), datasets=ROWS, window=8) as items:
            async for i in items:
                if i == 5:
                    break
        await until(lambda: _written(marker))
        # Closed near where the consumer left: it never ran past its credit.
        assert int(marker.read_text()) <= 6 + 8
        await until(lambda: _idle(client))
        assert (await _progress(client))["made"] == int(marker.read_text())  # served at once
        answer = await client.request([Command("one", "plain", [], ROWS)])
        assert answer["one"] == 1


async def _written(path: Path) -> bool:
    """``path`` exists with its content (a process writes it: whole once non-empty)."""
    return path.exists() and path.read_text() != ""  # noqa: ASYNC240 - polling a tiny file


async def test_dropping_an_unfinished_stream_cancels_it(one: LocalCluster, tmp_path: Path) -> None:
    marker = tmp_path / "closed"
    async with Client(one.address, token=one.token) as client:
        items = client.stream("forever", str(marker), datasets=ROWS, window=4)
        assert await anext(items) == 0
        del items  # garbage: its producer stops
        await until(lambda: _written(marker))
        await until(lambda: _idle(client))


async def test_an_exception_at_item_k_surfaces_after_the_items_before_it(
    one: LocalCluster,
) -> None:
    async with Client(one.address, token=one.token) as client:
        seen: list[int] = []
        with pytest.raises(RemoteError) as raised:
            async for index, _ in client.stream("rows", 10, fail_at=3, datasets=ROWS):
                seen.append(index)
        assert seen == [0, 1, 2]
        assert raised.value.exc_type == "ValueError"
        assert "row 3 is bad" in str(raised.value)
        assert "raise ValueError" in raised.value.remote_traceback
        assert (await _progress(client))["closed"] == 1  # its finally ran


async def test_async_generators_and_plain_functions_stream_too(one: LocalCluster) -> None:
    async with Client(one.address, token=one.token) as client:
        assert [x async for x in client.stream("arows", 50, datasets=ROWS, window=3)] == list(
            range(50)
        )
        assert [x async for x in client.stream("returns_generator", 4, datasets=ROWS)] == [
            0,
            1,
            2,
            3,
        ]
        assert [x async for x in client.stream("count_up", 300, window=7)] == list(range(300))


async def test_a_call_to_a_generator_says_to_stream_it_and_a_stream_of_a_value_says_why_not(
    one: LocalCluster,
) -> None:
    async with Client(one.address, token=one.token) as client:
        with pytest.raises(UsageError, match=r"mpreg.stream\('rows'"):
            await client.request([Command("r", "rows", [3], ROWS)])
        with pytest.raises(UsageError, match="not a generator"):
            async for _ in client.stream("plain", datasets=ROWS):
                pass
        assert (await _progress(client))["closed"] == 0  # the generator never started


async def test_a_deadline_ends_the_stream_with_deadline_exceeded(one: LocalCluster) -> None:
    async with Client(one.address, token=one.token) as client:
        seen = 0
        with pytest.raises(mpreg.DeadlineExceeded):
            async for _ in client.stream("forever", "/dev/null", datasets=ROWS, timeout=0.5):
                seen += 1
                await asyncio.sleep(0.01)  # ok-sleep: a slow consumer meets its deadline
        assert seen > 0
        await until(lambda: _idle(client))


async def test_the_worker_dying_mid_stream_ends_it_with_actor_died_after_its_items(
    one: LocalCluster,
) -> None:
    async with Client(one.address, token=one.token) as client:
        pid = (await _progress(client))["pid"]
        seen: list[int] = []
        with pytest.raises(ActorDiedError):
            async for index, _ in client.stream("rows", 1_000_000, datasets=ROWS, window=4):
                seen.append(index)
                if index == 10:
                    os.kill(pid, signal.SIGKILL)
        assert seen == list(range(len(seen)))  # in order, nothing repeated
        assert 10 < len(seen) <= 11 + 4


async def test_a_stream_whose_process_dies_before_its_first_item_is_retried(
    one: LocalCluster, tmp_path: Path
) -> None:
    marker = tmp_path / "started"
    async with Client(one.address, token=one.token) as client:
        items = client.stream("slow_start", str(marker), 5, datasets=ROWS)
        first = asyncio.ensure_future(anext(items))
        await until(lambda: _written(marker))
        os.kill(int(marker.read_text()), signal.SIGKILL)
        assert await asyncio.wait_for(first, 30) == 0  # from the restarted replica
        assert [x async for x in items] == [1, 2, 3, 4]


async def test_the_clients_node_dying_mid_stream_ends_it_with_cluster_unavailable(
    one: LocalCluster,
) -> None:
    async with Client(one.address, token=one.token, reconnect_timeout=0.5) as client:
        seen = 0
        with pytest.raises(mpreg.ClusterUnavailable):
            async for _ in client.stream("forever", "/dev/null", datasets=ROWS, window=4):
                seen += 1
                if seen == 3:
                    one.nodes[0].process.send_signal(signal.SIGKILL)
        assert seen >= 3


async def test_a_stream_across_two_nodes_async(two: LocalCluster) -> None:
    async with Client(two.address, token=two.token) as client:
        seen: list[int] = []
        async with client.stream("rows", 2_000, 100, datasets=ROWS, window=16) as items:
            async for index, _ in items:
                seen.append(index)
                if index == 50:
                    with pytest.raises(TimeoutError):
                        async with asyncio.timeout(0.5):
                            while True:
                                assert (await _progress(client))["made"] <= len(seen) + 16
                if index == 100:
                    break
        assert seen == list(range(101))
        await until(lambda: _closed(client, 1))
        assert [x async for x in client.stream("arows", 500, datasets=ROWS)] == list(range(500))
        with pytest.raises(RemoteError, match="row 7 is bad"):
            async for _ in client.stream("rows", 10, fail_at=7, datasets=ROWS):
                pass


async def _closed(client: Client, count: int) -> bool:
    return (await _progress(client))["closed"] == count


async def test_a_stream_across_two_nodes_sync(two: LocalCluster, tmp_path: Path) -> None:
    marker = tmp_path / "closed"

    def run() -> tuple[list[int], list[int]]:
        mpreg.init(two.address, token=two.token)
        try:
            whole = [index for index, _ in mpreg.stream("rows", 3_000, 10, datasets=ROWS)]
            part: list[int] = []
            with mpreg.stream("rows", 3_000, datasets=ROWS, window=8) as items:
                for index, _ in items:
                    part.append(index)
                    if index == 20:
                        break
            for index in mpreg.stream("forever", str(marker), datasets=ROWS, window=4):
                if index == 2:
                    break  # no with: the dropped iterator stops the generator
            with pytest.raises(UsageError, match="stream"):
                mpreg.call("rows", 3, datasets=ROWS)  # the sync fast path says so too
            return whole, part
        finally:
            mpreg.shutdown()

    whole, part = await asyncio.to_thread(run)
    assert whole == list(range(3_000))
    assert part == list(range(21))
    async with Client(two.address, token=two.token) as client:
        await until(lambda: _written(marker))
        await until(lambda: _closed(client, 2))
        assert (await _progress(client))["finished"] == 1
