"""A worker's lane: calls straight from a client, answered there, as its node's calls are.

Real node and worker processes; the client side is a bare connection
(tests/lane_support.py) that sends exactly the messages a driver would.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import cluster_actors as ca
import pytest
from lane_support import answer, assert_serves, call, dial_lane, lane_route, node_client, value
from restart_support import until

from mpreg import AuthenticationError, Client, Command
from mpreg.host.cluster import LocalCluster
from mpreg.protocol.codec import dumps_value
from mpreg.protocol.credentials import read_only_credential
from mpreg.protocol.lanes import Lane
from mpreg.protocol.messages import Assign, CancelCall, Shutdown
from mpreg.protocol.streams import StreamCredit
from mpreg.testing import node, run_cluster
from mpreg.transport.connection import parse_address

pytestmark = pytest.mark.cluster

TIMED = ("timed",)


@pytest.fixture
async def timed() -> AsyncIterator[LocalCluster]:
    async with run_cluster(node("lanes", workers=0, actors=(ca.Timed,))) as cluster:
        yield cluster


async def _lane(cluster: LocalCluster) -> Lane:
    client = await node_client(cluster.address, cluster.token)
    try:
        route = await lane_route(client, "asleep", TIMED, want=1)
    finally:
        client.close()
    assert len(route.lanes) == 1
    return route.lanes[0]


async def _counts(client: Client) -> dict[str, int]:
    result = await client.request([Command("c", "counts", [], list(TIMED))], timeout=10)
    counts: dict[str, int] = result["c"]
    return counts


async def test_a_lane_call_is_answered_on_the_lane(timed: LocalCluster) -> None:
    lane = await _lane(timed)
    assert lane.endpoint_id.endswith("/Timed-1")
    peer = await dial_lane(lane)
    try:
        peer.send(call(1, "sleep", 0.0))
        peer.send(call(2, "asleep", 0.01))
        peer.send(call(3, "no_such_method"))
        assert value(await answer(peer, 1)) == 0.0
        assert value(await answer(peer, 2)) == 0.01
        missing = await answer(peer, 3)
        assert missing.error is not None and missing.error.kind == "no-route"
        # A future's small result (under HOLD_FROM_BYTES) comes back on the lane too.
        peer.send(call(4, "big", 100, session="whoever", task_id=9))
        assert value(await answer(peer, 4)) == b"x" * 100
    finally:
        peer.close()


async def test_a_lane_admits_only_its_ticket(timed: LocalCluster) -> None:
    lane = await _lane(timed)
    for wrong in ("not-the-ticket", timed.token, read_only_credential(timed.token)):
        with pytest.raises(AuthenticationError):
            await dial_lane(lane, wrong)
    peer = await dial_lane(lane)  # the worker still admits the right one
    try:
        peer.send(call(1, "sleep", 0.0))
        assert value(await answer(peer, 1)) == 0.0
    finally:
        peer.close()


async def test_shutdown_and_assign_from_a_lane_are_ignored(timed: LocalCluster) -> None:
    lane = await _lane(timed)
    peer = await dial_lane(lane)
    async with Client(timed.address, token=timed.token) as client:
        pid = (await _counts(client))["pid"]
        try:
            spec = dumps_value("not a spec", what="test")
            peer.send(Assign(lane.endpoint_id, spec, "127.0.0.1", "mine"))
            peer.send(Shutdown())
            peer.send(StreamCredit(1, 5, opens=True))
            peer.send(call(1, "sleep", 0.0))
            assert value(await answer(peer, 1)) == 0.0  # read after all three
        finally:
            peer.close()
        assert (await _counts(client))["pid"] == pid  # the same process serves its node


async def test_the_same_call_id_from_the_node_and_a_lane_is_answered_to_each(
    timed: LocalCluster,
) -> None:
    lane = await _lane(timed)
    peer = await dial_lane(lane)
    async with Client(timed.address, token=timed.token) as client:
        try:
            # The node numbers its calls from 1 too: ids 1-8 run on both at once, and
            # cancelling lane calls 5-8 must not touch the node's calls 5-8.
            node_seconds = [3.0 + i / 1000 for i in range(8)]
            lane_seconds = [3.0 + i / 1000 + 0.0005 for i in range(8)]
            for i, seconds in enumerate(lane_seconds, start=1):
                peer.send(call(i, "asleep", seconds))
            via_node = asyncio.gather(
                *(
                    client.request([Command("s", "asleep", [s], list(TIMED))], timeout=10)
                    for s in node_seconds
                )
            )

            async def all_started() -> bool:
                return (await _counts(client))["started"] == 16

            await until(all_started, timeout=10)
            for i in range(5, 9):
                peer.send(CancelCall(i))
            lane_answers = [await answer(peer, i) for i in range(1, 9)]
            node_answers = [r["s"] for r in await via_node]
            counts = await _counts(client)
        finally:
            peer.close()
    assert [value(done) for done in lane_answers[:4]] == lane_seconds[:4]
    assert [done.error.kind if done.error else None for done in lane_answers[4:]] == [
        "cancelled"
    ] * 4
    assert node_answers == node_seconds
    assert (counts["finished"], counts["cancelled"]) == (12, 4)


async def test_deadlines_and_cancels_on_a_lane(timed: LocalCluster) -> None:
    lane = await _lane(timed)
    peer = await dial_lane(lane)
    try:
        start = time.monotonic()
        peer.send(call(1, "asleep", 5.0, deadline=time.time() + 0.3))
        late = await answer(peer, 1)
        assert late.error is not None and late.error.kind == "deadline"
        assert time.monotonic() - start < 2.0
        peer.send(call(2, "asleep", 5.0))
        peer.send(call(3, "sleep", 0.0, deadline=time.time() - 1))  # expired on arrival
        expired = await answer(peer, 3)
        assert expired.error is not None and expired.error.kind == "deadline"
        peer.send(CancelCall(2))
        cancelled = await answer(peer, 2)
        assert cancelled.error is not None and cancelled.error.kind == "cancelled"
    finally:
        peer.close()


async def test_a_closed_lane_cancels_its_running_calls(timed: LocalCluster) -> None:
    lane = await _lane(timed)
    peer = await dial_lane(lane)
    async with Client(timed.address, token=timed.token) as client:
        peer.send(call(1, "asleep", 30.0))

        async def started() -> bool:
            return (await _counts(client))["started"] == 1

        await until(started, timeout=10)
        peer.close()

        async def cancelled() -> bool:
            return (await _counts(client))["cancelled"] == 1

        await until(cancelled, timeout=10)


async def test_garbage_on_a_lane_port_leaves_the_worker_serving(timed: LocalCluster) -> None:
    lane = await _lane(timed)
    host, port = parse_address(lane.address)
    for junk in (b"GET / HTTP/1.1\r\n\r\n", b"\x00" * 64, b"\xff" * 4096):
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(junk)
        await writer.drain()
        async with asyncio.timeout(10):
            await reader.read()  # the worker closes it
        writer.close()
    _, silent = await asyncio.open_connection(host, port)  # connects, never says anything
    try:
        await assert_serves(lane)
        async with Client(timed.address, token=timed.token) as client:
            assert (await _counts(client))["started"] == 1
    finally:
        silent.close()


async def test_lane_calls_are_counted_in_status(timed: LocalCluster) -> None:
    lane = await _lane(timed)
    peer = await dial_lane(lane)
    try:
        for i in range(1, 6):
            peer.send(call(i, "sleep", 0.0))
        peer.send(call(6, "no_such_method"))
        for i in range(1, 7):
            await answer(peer, i)
    finally:
        peer.close()
    async with Client(timed.address, token=timed.token) as client:

        async def counted() -> bool:
            (endpoint,) = [e for e in (await client.status()).endpoints if e.label == "Timed"]
            return endpoint.lane_calls == 6

        await until(counted, timeout=10)
        (endpoint,) = [e for e in (await client.status()).endpoints if e.label == "Timed"]
    assert endpoint.calls >= 6 and endpoint.errors == 1
    assert endpoint.lane_busy_seconds > 0
