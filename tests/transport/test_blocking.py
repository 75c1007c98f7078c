"""The blocking connection the sync facade uses: same handshake, same frames."""

from __future__ import annotations

import asyncio

import pytest

from mpreg import AuthenticationError, ClusterUnavailable, Command
from mpreg.driver.sync_client import SyncClient
from mpreg.host.cluster import LocalCluster


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
