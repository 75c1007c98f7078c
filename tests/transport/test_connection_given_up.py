"""A dial whose opener gave up (cancelled while authenticating) is dropped quietly."""

from __future__ import annotations

import asyncio
import time

from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.transport.connection import Connection, ConnState

TOKEN = b"given-up"


async def test_a_connection_given_up_before_its_welcome_is_aborted_without_a_loop_error() -> None:
    loop = asyncio.get_running_loop()
    accepted: list[Connection] = []

    def accept() -> Connection:
        conn = Connection(Handshake("acceptor", TOKEN, PeerIdentity("node", "server")))
        accepted.append(conn)
        return conn

    server = await loop.create_server(accept, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        _, dialled = await loop.create_connection(
            lambda: Connection(Handshake("connector", TOKEN, PeerIdentity("client", "c"))),
            "127.0.0.1",
            port,
        )
        dialled.ready.cancel()  # what cancelling a task awaiting it does, mid-handshake
        deadline = time.monotonic() + 10
        while dialled.state is not ConnState.CLOSED:  # the welcome came: dropped
            assert time.monotonic() < deadline, dialled.state
            await asyncio.sleep(0.01)
        assert accepted and await asyncio.wait_for(accepted[0].closed, 10) is None
        # The autouse fixture fails the test on any unhandled loop exception.
    finally:
        server.close()
        for conn in accepted:
            conn.close()
