"""Dialling something that is not mpreg (ssh, a web server) says so, with what it sent."""

from __future__ import annotations

import asyncio

import pytest

from mpreg.errors import ProtocolError
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.transport.dial import connect


async def test_an_ssh_server_is_named_as_not_mpreg() -> None:
    handled = asyncio.Event()

    async def greet(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(b"SSH-2.0-OpenSSH_9.2p1\r\n")
        await writer.drain()
        await reader.read()  # until the client hangs up
        writer.close()
        await writer.wait_closed()
        handled.set()

    server = await asyncio.start_server(greet, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        with pytest.raises(ProtocolError, match=r"is not an mpreg node .*SSH-2\.0"):
            await connect(
                "127.0.0.1",
                port,
                Handshake("connector", b"token", PeerIdentity("client", "test")),
                timeout=5,
            )
        async with asyncio.timeout(5):
            await handled.wait()  # the client hung up on it
    finally:
        server.close()
        await server.wait_closed()
