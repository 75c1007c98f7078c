"""Direct lanes, the node's side: which lanes a client gets, and the results it keeps for them.

Real nodes and workers; the client side is bare connections (tests/lane_support.py).
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import cluster_actors as ca
import pytest
from lane_support import answer, assert_serves, call, dial_lane, lane_route, node_client, value
from restart_support import until

from mpreg import AuthenticationError, Client, Command
from mpreg.errors import MpregError
from mpreg.host import certs
from mpreg.protocol.codec import loads_value
from mpreg.protocol.credentials import read_only_credential
from mpreg.protocol.held import HOLD_FROM_BYTES
from mpreg.protocol.lanes import LaneQuery
from mpreg.protocol.messages import Fetch, Reply, TaskDone
from mpreg.testing import node, run_cluster
from mpreg.transport.tls import TLSFiles, client_context

pytestmark = pytest.mark.cluster

TIMED = ("timed",)
BIG = HOLD_FROM_BYTES + 1000


async def _store_values(client: Client) -> int:
    (stats,) = (await client.status()).nodes
    return stats.store_values


async def test_a_futures_big_lane_result_is_held_by_the_node_for_its_session() -> None:
    async with run_cluster(node("keeps", workers=0, actors=(ca.Timed,))) as cluster:
        client = await node_client(cluster.address, cluster.token)
        route = await lane_route(client, "big", TIMED, want=1)
        (lane,) = route.lanes
        peer = await dial_lane(lane)
        try:
            peer.send(call(1, "big", BIG, session=route.session, task_id=7))
            done = await answer(peer, 1)
            assert (done.result, done.error) == (None, None)  # "your node will tell you"
            told = await client.next(TaskDone, lambda d: d.task_id == 7)
            assert (told.result, told.error, told.where) == (None, None, lane.endpoint_id)
            assert told.held >= BIG
            client.send(Fetch((7,)))
            fetched = await client.next(TaskDone, lambda d: d.task_id == 7)
            assert fetched.result is not None
            assert loads_value(fetched.result, what="test") == b"x" * BIG
            # The same task id again is refused, as a reused put is.
            peer.send(call(2, "big", BIG, session=route.session, task_id=7))
            assert (await answer(peer, 2)).result is None
            reused = await client.next(TaskDone, lambda d: d.task_id == 7)
            assert reused.error is not None and reused.error.kind == "plan"
            other = await node_client(cluster.address, cluster.token)
            async with Client(cluster.address, token=cluster.token) as watcher:
                assert await _store_values(watcher) == 1
                # Once the session is gone, a result kept for it is dropped.
                client.close()
                await until(lambda: _gone(watcher), timeout=10)
                live = await lane_route(other, "big", TIMED, want=1)
                peer.send(call(3, "big", BIG, session=route.session, task_id=8))
                peer.send(call(4, "big", BIG, session=live.session, task_id=8))
                # Kept messages reach the node in order: the dead session's came first.
                assert (await other.next(TaskDone, lambda d: d.task_id == 8)).held >= BIG
                assert await _store_values(watcher) == 1
            other.close()
        finally:
            peer.close()
            client.close()


async def _gone(watcher: Client) -> bool:
    return await _store_values(watcher) == 0


async def test_lanes_are_offered_only_when_every_replica_is_a_process_of_this_node() -> None:
    async with run_cluster(
        node("a", workers=1, functions=(ca.add,), actors=(ca.Timed,)),
        node("b", workers=1, functions=(ca.add,)),
    ) as cluster:
        async with Client(cluster.address, token=cluster.token) as watcher:

            async def both_known() -> bool:
                return len((await watcher.status()).endpoints) == 3

            await until(both_known, timeout=20)
        client = await node_client(cluster.address, cluster.token)
        try:
            timed = await lane_route(client, "asleep", TIMED, want=1)
            assert [lane.endpoint_id.split("/")[1][:6] for lane in timed.lanes] == ["Timed-"]
            assert (await lane_route(client, "add")).lanes == ()  # b serves it too
            assert (await lane_route(client, "nothing_serves_this")).lanes == ()
            assert (await lane_route(client, "asleep", ("other",))).lanes == ()
            # One session, one key.
            assert (await lane_route(client, "add")).session == timed.session
        finally:
            client.close()


async def test_a_node_with_lanes_off_offers_none() -> None:
    async with run_cluster(node("off", workers=1, functions=(ca.add,), lanes=False)) as cluster:
        async with Client(cluster.address, token=cluster.token) as watcher:
            result = await watcher.request([Command("s", "add", [1, 2])], timeout=10)
            assert result["s"] == 3  # it serves
        client = await node_client(cluster.address, cluster.token)
        try:
            assert (await lane_route(client, "add")).lanes == ()
        finally:
            client.close()


async def test_workers_not_started_yet_leave_their_started_siblings_lanes() -> None:
    config = node("lazy", workers=2, functions=(ca.add,), eager_workers=False)
    async with run_cluster(config) as cluster:
        client = await node_client(cluster.address, cluster.token)
        try:
            assert (await lane_route(client, "add")).lanes == ()  # nothing runs yet
            async with Client(cluster.address, token=cluster.token, lanes=False) as starter:
                assert (await starter.request([Command("s", "add", [1, 2])]))["s"] == 3
                started = [e for e in (await starter.status()).endpoints if e.pid]
            assert len(started) == 1  # one call started one of the two
            (lane,) = (await lane_route(client, "add", want=1)).lanes
            assert lane.endpoint_id == started[0].endpoint_id
        finally:
            client.close()


async def test_a_restarted_worker_gets_a_new_ticket_and_refuses_the_old() -> None:
    async with run_cluster(node("restarts", workers=0, actors=(ca.Timed,))) as cluster:
        client = await node_client(cluster.address, cluster.token)
        try:
            (old,) = (await lane_route(client, "asleep", TIMED, want=1)).lanes
            peer = await dial_lane(old)
            peer.send(call(1, "counts"))
            pid = value(await answer(peer, 1))["pid"]
            peer.close()
            os.kill(pid, signal.SIGKILL)
            deadline = time.monotonic() + 20
            while True:
                lanes = (await lane_route(client, "asleep", TIMED)).lanes
                if lanes and lanes[0].ticket != old.ticket:
                    break
                assert time.monotonic() < deadline, "no lane from the restarted worker"
                await asyncio.sleep(0.05)  # ok-sleep: polling the node while it restarts
            (new,) = lanes
            assert new.endpoint_id == old.endpoint_id and new.address != old.address
            with pytest.raises(AuthenticationError):
                await dial_lane(new, old.ticket)
            peer = await dial_lane(new)
            try:
                peer.send(call(1, "counts"))
                assert value(await answer(peer, 1))["pid"] != pid
            finally:
                peer.close()
        finally:
            client.close()


async def test_a_read_only_connection_gets_no_lanes() -> None:
    async with run_cluster(node("ro", workers=1, functions=(ca.add,))) as cluster:
        reader = await node_client(cluster.address, read_only_credential(cluster.token))
        try:
            reader.send(LaneQuery(5, "add", frozenset()))
            reply = await reader.next(Reply, lambda r: r.request_id == 5)
            assert reply.value is None
            assert reply.error is not None and reply.error.kind == "auth"
        finally:
            reader.close()


async def test_a_tls_nodes_lanes_speak_tls(tmp_path: Path) -> None:
    issued = certs.init_dir(tmp_path / "tls", hosts=("127.0.0.1",))
    ca_file = str(issued[certs.CA].cert)
    files = {"tls_cert": str(issued[certs.NODE].cert), "tls_key": str(issued[certs.NODE].key)}
    client_files = TLSFiles(str(issued[certs.CLIENT].cert), str(issued[certs.CLIENT].key), ca_file)
    config = node("tls", workers=0, actors=(ca.Timed,), tls_ca=ca_file, **files)
    async with run_cluster(config) as cluster:
        client = await node_client(cluster.address, cluster.token, client_context(client_files))
        try:
            (lane,) = (await lane_route(client, "sleep", TIMED, want=1)).lanes
        finally:
            client.close()
        with pytest.raises(MpregError):
            await dial_lane(lane)  # clear text to a TLS lane
        peer = await dial_lane(lane, ssl=client_context(client_files))
        try:
            peer.send(call(1, "sleep", 0.0))
            assert value(await answer(peer, 1)) == 0.0
        finally:
            peer.close()


async def test_lanes_are_advertised_under_the_nodes_advertise_host() -> None:
    config = node("adv", workers=0, actors=(ca.Timed,), advertise_host="localhost")
    async with run_cluster(config) as cluster:
        assert cluster.address.startswith("localhost:")
        client = await node_client(cluster.address, cluster.token)
        try:
            (lane,) = (await lane_route(client, "sleep", TIMED, want=1)).lanes
        finally:
            client.close()
        assert lane.address.startswith("localhost:")  # bound on 127.0.0.1, dialled so
        await assert_serves(lane)
