"""Routing by (function, datasets) across two real nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator

import cluster_actors as ca
import pytest

from mpreg import Client, Command, NoRouteError, Ref, UnknownFunctionError
from mpreg.host.cluster import LocalCluster
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster


@pytest.fixture
async def two_nodes() -> AsyncIterator[LocalCluster]:
    """Node A hosts OwnsA (dataset a); node B hosts OwnsB (b) and OwnsAB (a and b)."""
    async with run_cluster(
        node("A", workers=1, actors=(ca.OwnsA,)),
        node("B", workers=1, actors=(ca.OwnsB, ca.OwnsAB)),
    ) as cluster:
        yield cluster


async def _who(client: Client, datasets: list[str]) -> dict[str, object]:
    result = await client.request([Command("w", "who", [], datasets)])
    return result["w"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("entry", [0, 1], ids=["via-A", "via-B"])
async def test_command_runs_where_its_dataset_is_whichever_node_the_client_uses(
    two_nodes: LocalCluster, entry: int
) -> None:
    async with Client(two_nodes.addresses[entry], token=two_nodes.token) as client:
        for_a = {(await _who(client, ["a"]))["label"] for _ in range(30)}
        for_b = {(await _who(client, ["b"]))["label"] for _ in range(30)}
    # Replicas on either node qualify; nothing without the dataset ever runs it.
    assert for_a == {"OwnsA", "OwnsAB"}
    assert for_b == {"OwnsB", "OwnsAB"}


async def test_actor_missing_a_dataset_is_never_chosen(two_nodes: LocalCluster) -> None:
    async with Client(two_nodes.addresses[1], token=two_nodes.token) as client:
        labels = {(await _who(client, ["a", "b"]))["label"] for _ in range(40)}
    assert labels == {"OwnsAB"}


async def test_empty_datasets_may_run_on_any_replica(two_nodes: LocalCluster) -> None:
    async with Client(two_nodes.address, token=two_nodes.token) as client:
        labels = {(await _who(client, []))["label"] for _ in range(60)}
    assert labels == {"OwnsA", "OwnsAB", "OwnsB"}


async def test_no_route_fails_before_anything_runs(two_nodes: LocalCluster) -> None:
    async with Client(two_nodes.address, token=two_nodes.token) as client:
        with pytest.raises(NoRouteError) as info:
            await client.request(
                [
                    # Only OwnsAB holds both: what it recorded is all there is to check.
                    Command("ok", "record", ["should not run"], ["a", "b"]),
                    Command("bad", "who", [], ["a", "c"]),
                ]
            )
        assert info.value.command == "bad"
        assert "'a', 'c'" in str(info.value)
        assert await client.request([Command("r", "recorded", [], ["a", "b"])]) == {"r": []}


async def test_unknown_function_fails_before_anything_runs(two_nodes: LocalCluster) -> None:
    async with Client(two_nodes.address, token=two_nodes.token) as client:
        with pytest.raises(UnknownFunctionError) as info:
            await client.request(
                [
                    Command("ok", "record", ["x"], ["a", "b"]),
                    Command("nope", "no_such_function", []),
                ]
            )
        assert info.value.command == "nope"
        assert "no_such_function" in str(info.value)
        assert await client.request([Command("r", "recorded", [], ["a", "b"])]) == {"r": []}


async def test_dag_spanning_both_nodes_resolves_inside_the_cluster(two_nodes: LocalCluster) -> None:
    async with Client(two_nodes.address, token=two_nodes.token) as client:
        result = await client.request(
            [
                Command("|a", "record", [1], ["a"]),
                Command("|b", "record", ["|a"], ["b"]),
                Command("|both", "record", [[Ref("|a"), Ref("|b")]], ["a", "b"]),
            ]
        )
    assert result == {"|both": [1, 1]}
