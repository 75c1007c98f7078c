"""Helpers for the direct-lane tests: a bare client of a node, a bare lane to a worker.

Both are real authenticated connections (mpreg.transport.dial.connect) whose
received messages are queued, so a test sends exactly the messages it means
and reads exactly what came back.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from ssl import SSLContext
from typing import Any, TypeVar

from mpreg.protocol.codec import dumps_value, loads_value
from mpreg.protocol.credentials import Key
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.lanes import Lane, LaneQuery, LaneRoute
from mpreg.protocol.messages import Call, CallDone, Reply
from mpreg.transport.connection import Connection, parse_address
from mpreg.transport.dial import connect

T = TypeVar("T")
WAIT = 10.0  # seconds any one expected message may take

_request_ids = itertools.count(1)


class Peer:
    """One bare connection and the messages it received, in order."""

    def __init__(self) -> None:
        self.conn: Connection | None = None
        self.received: asyncio.Queue[object] = asyncio.Queue()
        self.skipped: list[object] = []  # received, not yet asked for

    def on_message(self, _conn: Connection, message: object) -> None:
        self.received.put_nowait(message)

    def send(self, message: object) -> None:
        assert self.conn is not None
        self.conn.send(message)

    async def next(self, kind: type[T], where: Callable[[T], bool] = lambda _: True) -> T:
        """The first received message of ``kind`` that ``where`` accepts (others wait)."""
        for i, message in enumerate(self.skipped):
            if isinstance(message, kind) and where(message):
                del self.skipped[i]
                return message
        async with asyncio.timeout(WAIT):
            while True:
                message = await self.received.get()
                if isinstance(message, kind) and where(message):
                    return message
                self.skipped.append(message)

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()


async def node_client(address: str, token: str, ssl: SSLContext | None = None) -> Peer:
    """A bare client connection to the node at ``address``."""
    peer = Peer()
    host, port = parse_address(address)
    peer.conn = await connect(
        host,
        port,
        Handshake("connector", token.encode(), PeerIdentity("client", "lane-test")),
        on_message=peer.on_message,
        ssl=ssl,
    )
    return peer


async def lane_route(
    client: Peer, fun: str, datasets: tuple[str, ...] = (), *, want: int = 0
) -> LaneRoute:
    """Ask the node which lanes may take ``fun``; with ``want``, until that many are offered."""
    deadline = time.monotonic() + WAIT
    while True:
        rid = next(_request_ids)
        client.send(LaneQuery(rid, fun, frozenset(datasets)))
        reply = await client.next(Reply, lambda r, rid=rid: r.request_id == rid)
        assert reply.error is None, reply.error
        route = reply.value
        assert isinstance(route, LaneRoute)
        if len(route.lanes) >= want:
            return route
        assert time.monotonic() < deadline, f"no {want} lanes for {fun!r}: {route}"
        await asyncio.sleep(0.02)  # ok-sleep: polling the node, bounded by WAIT


async def dial_lane(lane: Lane, secret: str | None = None, ssl: SSLContext | None = None) -> Peer:
    """A lane to ``lane``'s worker proving ``secret`` (default: the lane's own ticket)."""
    peer = Peer()
    host, port = parse_address(lane.address)
    proof = [Key((lane.ticket if secret is None else secret).encode())]
    peer.conn = await connect(
        host,
        port,
        Handshake("connector", proof, PeerIdentity("client", "lane-test")),
        on_message=peer.on_message,
        ssl=ssl,
    )
    return peer


def call(call_id: int, fun: str, *args: Any, **fields: Any) -> Call:
    """A ``Call`` of ``fun(*args)``; ``fields`` set the rest (deadline, session, task_id)."""
    return Call(call_id, fun, dumps_value((args, {}), what="test arguments"), **fields)


async def answer(peer: Peer, call_id: int) -> CallDone:
    return await peer.next(CallDone, lambda d: d.call_id == call_id)


def value(done: CallDone) -> Any:
    """The result a successful ``CallDone`` carries."""
    assert done.error is None, done.error
    assert done.result is not None
    return loads_value(done.result, what="a test result")


async def assert_serves(lane: Lane) -> None:
    """Dial ``lane`` (a Timed actor's) and see one call answered on it."""
    peer = await dial_lane(lane)
    try:
        peer.send(call(1, "sleep", 0.0))
        assert value(await answer(peer, 1)) == 0.0
    finally:
        peer.close()
