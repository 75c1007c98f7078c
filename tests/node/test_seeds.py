"""Seeds: parsing ``--join A,B,C``, resolving names, joining through the first that answers.

The joins here are real TCP dials on loopback: a listening server is a live
seed, a closed port a dead one, a server that never answers a hung one.
Names are resolved for real, but only ``localhost`` (``/etc/hosts``, no DNS).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import pytest

from mpreg.config import NodeConfig, default_node_name
from mpreg.driver.client import Client
from mpreg.errors import JoinFailed
from mpreg.host.cluster import LocalCluster
from mpreg.node.seeds import join_seeds, resolve, split_seeds
from mpreg.transport.connection import parse_address


def test_seeds_split_on_commas_keep_their_order_and_come_once() -> None:
    assert split_seeds("a:1, b:2,,a:1 ,c") == ("a:1", "b:2", "c")
    assert split_seeds(["a:1,b:2", "c:3", "b:2"]) == ("a:1", "b:2", "c:3")
    assert split_seeds("[::1]:7773,127.0.0.1:7") == ("[::1]:7773", "127.0.0.1:7")
    assert split_seeds("") == ()
    with pytest.raises(ValueError, match="bad port"):
        split_seeds("a:1,b:two")


def closed_port() -> int:
    """A loopback port nothing listens on: a dead host's stand-in."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_a_literal_address_resolves_to_itself_and_localhost_locally() -> None:
    assert await resolve("127.0.0.1:5000") == ["127.0.0.1:5000"]
    assert await resolve("tcp://[::1]:5000") == ["[::1]:5000"]
    assert "127.0.0.1:5000" in await resolve("localhost:5000")


@pytest.fixture
async def live() -> AsyncIterator[str]:
    """A listening loopback server: a seed that answers."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
    yield f"127.0.0.1:{server.sockets[0].getsockname()[1]}"
    server.close()
    await server.wait_closed()


class Dialler:
    """``Node.join``'s stand-in: a real TCP dial of each address, recorded in order."""

    def __init__(self, hang: frozenset[str] = frozenset()) -> None:
        self.tried: list[str] = []
        self.hang = hang

    async def __call__(self, address: str) -> None:
        self.tried.append(address)
        host, port = parse_address(address)
        _, writer = await asyncio.open_connection(host, port)
        writer.close()
        if address in self.hang:  # connected, but the join's answer never comes
            await asyncio.Event().wait()


async def test_the_first_seed_that_answers_is_joined_and_the_rest_untouched(live: str) -> None:
    dead = f"127.0.0.1:{closed_port()}"
    dial = Dialler()
    joined = await join_seeds(f"{dead},{live},127.0.0.1:1", dial, timeout=5)
    assert joined == live
    assert dial.tried == [dead, live]


async def test_a_name_stands_for_each_of_its_addresses(live: str) -> None:
    port = parse_address(live)[1]
    dial = Dialler()
    # localhost may also resolve to ::1, where nothing listens: then 127.0.0.1 is tried next.
    assert await join_seeds(f"localhost:{port}", dial, timeout=5) == live
    assert dial.tried[-1] == live
    assert set(dial.tried) <= {live, f"[::1]:{port}"}


async def test_this_nodes_own_address_is_never_dialled(live: str) -> None:
    dial = Dialler()
    with pytest.raises(JoinFailed, match="this node's own"):
        await join_seeds(live, dial, timeout=5, own=[live])
    assert dial.tried == []


async def test_a_seed_that_connects_but_never_answers_is_given_up_on_in_time(live: str) -> None:
    port = closed_port()
    other = f"127.0.0.1:{port}"
    hung = Dialler(hang=frozenset({live}))
    with pytest.raises(JoinFailed) as info:
        async with asyncio.timeout(5):
            await join_seeds([live, other], hung, timeout=0.3)
    assert hung.tried == [live, other]
    assert f"{live} (no answer within 0.3s)" in info.value.reason


async def test_when_no_seed_answers_the_error_names_every_one_and_why() -> None:
    dead = [f"127.0.0.1:{closed_port()}" for _ in range(2)]
    with pytest.raises(JoinFailed) as info:
        await join_seeds(",".join(dead), Dialler(), timeout=5)
    error = info.value
    assert error.peers == tuple(dead)
    assert error.reason.startswith("no seed answered: ")
    for address in dead:
        assert f"{address} (" in error.reason
    assert error.reason.count("refused") == 2


async def test_an_optional_join_with_nobody_answering_starts_alone() -> None:
    dead = f"127.0.0.1:{closed_port()}"
    assert await join_seeds(dead, Dialler(), timeout=5, optional=True) is None
    assert await join_seeds((), Dialler(), timeout=5) is None


# --- real nodes ---------------------------------------------------------------------


async def _names_seen_from(address: str, token: str) -> set[str]:
    async with Client(address, token=token) as client:
        status = await client.status()
    return {n.node.name for n in status.nodes}


@pytest.mark.cluster
async def test_a_node_joins_through_a_live_seed_behind_dead_ones_and_names_itself() -> None:
    cluster = LocalCluster()
    try:
        head = await cluster.add_node(NodeConfig(workers=0), join=False)
        port = parse_address(head.address)[1]
        dead = f"127.0.0.1:{closed_port()}"
        # A dead seed, then a name for the head (localhost), as `--join DEAD,localhost:PORT`.
        joiner = await cluster.add_node(NodeConfig(workers=0, peers=(f"{dead},localhost:{port}",)))
        # Unnamed nodes are "<short host name>-<port they bound>": two on one host differ.
        expected = {default_node_name(parse_address(n.address)[1]) for n in (head, joiner)}
        assert {head.name, joiner.name} == expected
        assert len(expected) == 2
        for entry in (head, joiner):
            assert await _names_seen_from(entry.address, cluster.token) == expected
    finally:
        await cluster.stop()


@pytest.mark.cluster
async def test_a_node_whose_seeds_all_fail_does_not_start_and_says_why() -> None:
    cluster = LocalCluster()
    dead = [f"127.0.0.1:{closed_port()}" for _ in range(2)]
    try:
        with pytest.raises(JoinFailed) as info:
            await cluster.add_node(NodeConfig(name="lonely", workers=0, peers=tuple(dead)))
        assert info.value.node == "lonely"
        for address in dead:
            assert f"{address} (connection refused)" in info.value.reason
    finally:
        await cluster.stop()


@pytest.mark.cluster
async def test_a_head_whose_seeds_are_gone_starts_a_new_cluster_alone() -> None:
    cluster = LocalCluster()
    try:
        dead = f"127.0.0.1:{closed_port()}"
        config = NodeConfig(workers=0, peers=(dead,), join_optional=True)
        head = await cluster.add_node(config)
        assert await _names_seen_from(head.address, cluster.token) == {head.name}
    finally:
        await cluster.stop()
