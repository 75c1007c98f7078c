"""A node survives any gossip an authenticated peer sends: malformed bodies are ignored.

An in-process node (no worker processes) and a fake member speaking the real
protocol over loopback, sending membership messages of every wrong shape.
"""

from __future__ import annotations

import asyncio
import logging
import time

import pytest

from mpreg.config import NodeConfig
from mpreg.membership import (
    Ack,
    AdvertUpdate,
    MemberInfo,
    MemberState,
    MemberUpdate,
    Ping,
    PingReq,
    Push,
    Sync,
)
from mpreg.node.adverts import Advert
from mpreg.node.node import Node
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.messages import Endpoint, Gossip
from mpreg.transport.connection import parse_address
from mpreg.transport.dial import connect

TOKEN = "gossip-safety-token"
FAKE = "fake-member-1"
ADDRESS = "127.0.0.1:1"
ME = MemberInfo(FAKE, "fake", ADDRESS)
EP = Endpoint(f"{FAKE}/f-1", FAKE, "worker", frozenset({"f"}), frozenset({"d"}), "f")

GARBAGE: list[object] = [
    None,
    42,
    "ping",
    b"\x00" * 100,
    ("ping", 1),
    Ping(1, "not a tuple"),  # type: ignore[arg-type]
    Ping(2, (None, 3, "x")),  # type: ignore[arg-type]
    Ack("seq", ()),  # type: ignore[arg-type]
    PingReq(3, 12345, ()),  # type: ignore[arg-type]
    Push((MemberUpdate(ME, -1, "alive"),)),  # type: ignore[arg-type]
    Push((MemberUpdate(MemberInfo(1, 2, 3), 0, MemberState.ALIVE),)),  # type: ignore[arg-type]
    Push((AdvertUpdate(FAKE, 9, "not an advert"),)),
    Push((AdvertUpdate(FAKE, 10, Advert(("nope",))),)),  # type: ignore[arg-type]
    Push((AdvertUpdate(FAKE, 11, Advert((EP,), crashed=(("x", "y"),))),)),  # type: ignore[arg-type]
    Sync("members", "adverts"),  # type: ignore[arg-type]
    Sync(((1, 2),), ((3, 4),)),  # type: ignore[arg-type]
]


async def test_a_node_ignores_malformed_gossip_and_keeps_its_routes_sound(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    node = Node(NodeConfig(name="head", token=TOKEN, workers=0))
    await node.start()
    try:
        host, port = parse_address(node.address)
        identity = PeerIdentity("node", "fake", {"node_id": FAKE, "address": ADDRESS})
        conn = await connect(host, port, Handshake("connector", TOKEN.encode(), identity))
        conn.send(Gossip(Sync((MemberUpdate(ME, 0, MemberState.ALIVE),), ())))
        for body in GARBAGE:
            conn.send(Gossip(body))
        # Then a well-formed advert: the node still takes it.
        conn.send(Gossip(Push((AdvertUpdate(FAKE, 20, Advert((EP,))),))))
        deadline = time.monotonic() + 10
        while node.routes.get(EP.endpoint_id) is None:
            assert time.monotonic() < deadline, "the good advert never applied"
            await asyncio.sleep(0.01)  # ok-sleep: polling in-process state, bounded
        assert [ep.endpoint_id for ep in node.routes.endpoints()] == [EP.endpoint_id]
        member = node.peering.swim.member(FAKE) if node.peering.swim else None
        assert member is not None and member.state is MemberState.ALIVE
        conn.close()
    finally:
        await node.stop()
    # Ignored quietly: no handler raised (a raise is logged, and would be a crash path).
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == [], [r.getMessage() for r in errors]
