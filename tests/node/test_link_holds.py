"""A peer link that lags holds that node's endpoints on the node, whichever side dialled.

An in-process Node (no workers: nothing is spawned) and a fake peer speaking the
real protocol over loopback. The fake advertises four endpoints, then stops
reading: the node's writes to it pass the link's high-water mark, so the node
holds that peer's endpoints, and only those. Once the fake reads again the hold
is let go and every call completes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Literal

import pytest

from mpreg import Client, Command
from mpreg.config import NodeConfig
from mpreg.membership import AdvertUpdate, MemberInfo, MemberState, MemberUpdate, Sync
from mpreg.node.adverts import Advert
from mpreg.node.node import Node
from mpreg.protocol.codec import dumps_value
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.messages import Endpoint, ForwardCall, ForwardDone, Gossip
from mpreg.transport.connection import Connection, parse_address
from mpreg.transport.dial import connect

TOKEN = "link-holds-test-token"
FAKE = "fake-node-1"
MiB = 1 << 20
CALLS = 40  # of 1 MiB: four endpoints' byte windows (4 x 8 MiB) are more than the link holds
ENDPOINTS = tuple(
    Endpoint(f"{FAKE}/f-{i}", FAKE, "worker", frozenset({"f"}), frozenset(), "f") for i in range(4)
)
RESULT = dumps_value(1)
ADDRESS = "127.0.0.1:1"  # where the fake says it listens (nobody dials it there)


class FakePeer:
    """A node that serves ``f`` on four endpoints and answers every forwarded call."""

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self.answered = 0

    def handshake(self, side: Literal["connector", "acceptor"]) -> Handshake:
        meta = {"node_id": FAKE, "address": ADDRESS}
        return Handshake(side, TOKEN.encode(), PeerIdentity("node", "fake", meta))

    def view(self) -> Gossip:
        """What a member sends when a link opens: itself, and its endpoints."""
        me = MemberUpdate(MemberInfo(FAKE, "fake", ADDRESS), 0, MemberState.ALIVE)
        return Gossip(Sync((me,), (AdvertUpdate(FAKE, 1, Advert(ENDPOINTS)),)))

    def on_message(self, conn: Connection, message: object) -> None:
        match message:
            case ForwardCall(call_id=call_id):
                conn.send(ForwardDone(call_id, RESULT, None))
                self.answered += 1


async def _until(ready: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.005)  # ok-sleep: polling in-process state, bounded by the deadline


@asynccontextmanager
async def _linked(node: Node, dialled_by_node: bool) -> AsyncIterator[FakePeer]:
    """A fake peer joined to ``node``: it dials the node, or the node dials it."""
    fake = FakePeer()
    server: asyncio.Server | None = None
    if dialled_by_node:

        def accept() -> Connection:
            conn = Connection(fake.handshake("acceptor"))
            conn.on_message = fake.on_message
            conn.ready.add_done_callback(lambda _: conn.send(fake.view()))
            fake.conn = conn
            return conn

        server = await asyncio.get_running_loop().create_server(accept, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        await node.join(f"127.0.0.1:{port}")
    else:
        host, port = parse_address(node.address)
        fake.conn = await connect(
            host,
            port,
            fake.handshake("connector"),
            on_message=fake.on_message,
        )
        fake.conn.send(fake.view())
    try:
        await _until(lambda: all(node.routes.get(e.endpoint_id) for e in ENDPOINTS))
        yield fake
    finally:
        if fake.conn is not None:
            fake.conn.close()
        if server is not None:
            server.close()


@pytest.mark.parametrize("dialled_by_node", [False, True], ids=["accepted", "dialled"])
async def test_a_peer_link_that_lags_holds_that_nodes_endpoints_until_it_drains(
    dialled_by_node: bool,
) -> None:
    # The client's bound is raised so that one client can fill the link.
    # The fake answers no probes: failure detection is slowed down well past the test.
    config = NodeConfig(
        name="head",
        token=TOKEN,
        workers=0,
        max_queued_bytes_per_client=256 * MiB,
        probe_interval=60.0,
        suspect_timeout=60.0,
    )
    node = Node(config)
    await node.start()
    try:
        async with (
            _linked(node, dialled_by_node) as fake,
            Client(node.address, token=TOKEN) as client,
        ):
            assert fake.conn is not None
            fake.conn.pause_reading()  # the peer hangs: the node's writes pile up
            payload = b"x" * MiB
            calls = asyncio.gather(
                *(
                    client.request([Command("t", "f", [payload], [])], timeout=30)
                    for _ in range(CALLS)
                )
            )
            await _until(lambda: len(node.calls.in_flight) + node.calls.queued == CALLS)
            assert node.pressure.held(("node", FAKE))
            assert node.calls.windows.held == {e.endpoint_id for e in ENDPOINTS}
            assert node.calls.queued > 0  # the rest wait on the node, not in the link
            fake.conn.resume_reading()
            assert [r["t"] for r in await calls] == [1] * CALLS
            await _until(lambda: not node.pressure.held(("node", FAKE)))
            assert node.calls.windows.held == frozenset() and fake.answered == CALLS
    finally:
        await node.stop()
