"""The blocking connection the sync facade uses: same handshake, same frames."""

from __future__ import annotations

import asyncio
import socket
import threading

import pytest

from mpreg import AuthenticationError, ClusterUnavailable, Command
from mpreg.driver.sync_client import SyncClient
from mpreg.host.cluster import LocalCluster
from mpreg.protocol.frames import FrameDecoder
from mpreg.protocol.handshake import PeerIdentity
from mpreg.transport.blocking import BlockingConnection


@pytest.mark.cluster
async def test_sync_client_round_trips_small_and_large_arguments(one_node: LocalCluster) -> None:
    client = SyncClient(one_node.address, one_node.token)
    big = bytes(range(256)) * 8192  # 2 MiB: sent as scattered pieces, not joined
    try:
        small = await asyncio.to_thread(
            client.request, [Command("e", "echo", ["hi"])], timeout=10, return_all=False
        )
        large = await asyncio.to_thread(
            client.request, [Command("e", "echo", [big])], timeout=10, return_all=False
        )
    finally:
        client.close()
    assert small == {"e": "hi"}
    assert large == {"e": big}


@pytest.mark.cluster
async def test_sync_client_with_a_wrong_token_is_refused(one_node: LocalCluster) -> None:
    client = SyncClient(one_node.address, "wrong")
    with pytest.raises(AuthenticationError):
        await asyncio.to_thread(
            client.request, [Command("e", "echo", [1])], timeout=10, return_all=False
        )


async def test_sync_client_to_nowhere_is_cluster_unavailable() -> None:
    client = SyncClient("127.0.0.1:1", "t")
    with pytest.raises(ClusterUnavailable):
        await asyncio.to_thread(
            client.request, [Command("e", "echo", [1])], timeout=5, return_all=False
        )


def test_interrupt_wakes_a_receive_blocked_in_another_thread() -> None:
    # A peer that never answers (as a stopped node): the reader would wait for ever.
    ours, theirs = socket.socketpair()
    conn = BlockingConnection(ours, PeerIdentity("node", "hung"), FrameDecoder())
    caught: list[BaseException] = []

    def read() -> None:
        try:
            conn.receive(None)
        except BaseException as exc:
            caught.append(exc)

    reader = threading.Thread(target=read, daemon=True)
    try:
        reader.start()
        reader.join(0.2)
        assert reader.is_alive()  # blocked, with no deadline
        conn.interrupt("node hung did not answer")
        reader.join(5)
        assert not reader.is_alive()
        assert len(caught) == 1 and isinstance(caught[0], ClusterUnavailable)
        assert str(caught[0]) == "node hung did not answer"
        assert conn.closed  # the reader closed it; interrupting again is harmless
        conn.interrupt("again")
    finally:
        conn.close()
        theirs.close()
