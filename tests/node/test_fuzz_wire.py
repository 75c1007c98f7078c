"""A live node takes hundreds of fuzzed connections and keeps serving a real client throughout.

Hypothesis draws the bytes (frames random, forged or mutated, a real hello
then garbage, pickles that would create a file if unpickled) and sends each
on a new connection from a thread, while the test's client keeps calling the
node. The in-process fuzz tests (tests/protocol/test_fuzz_*.py) cover the
decoder and the handshake themselves; this one covers the node around them.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from pathlib import Path

import pytest
from fuzz_support import fuzz, streams, touch_pickle, wire
from hypothesis import given
from hypothesis import strategies as st

from mpreg import Client, Command
from mpreg.protocol.frames import FrameKind
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.testing import node, run_cluster
from mpreg.transport.connection import parse_address

pytestmark = pytest.mark.cluster

CONNECTIONS = 300
HANGUP_SECONDS = 10.0  # the node's handshake timeout: it hangs up sooner on any of these


def _payloads(marker: Path) -> st.SearchStrategy[bytes]:
    # A hello from a peer with the wrong token gets the node one step further.
    hello = Handshake("connector", b"not-the-token", PeerIdentity("client", "fuzz")).start()
    assert hello is not None
    hello_frame = wire(FrameKind.HANDSHAKE, hello)
    pickle_frame = wire(FrameKind.MESSAGE, touch_pickle(str(marker)))
    return st.one_of(
        streams,
        streams.map(lambda data: hello_frame + data),
        st.just(pickle_frame),
        st.just(hello_frame + pickle_frame),
        st.binary(max_size=64).map(lambda data: hello_frame + data + pickle_frame),
    )


def _throw(host: str, port: int, marker: Path) -> None:
    """Send each example on a new connection; the node must hang up on every one."""

    @fuzz(CONNECTIONS)
    @given(_payloads(marker))
    def check(payload: bytes) -> None:
        with socket.create_connection((host, port), timeout=HANGUP_SECONDS) as sock:
            with contextlib.suppress(ConnectionError):  # it may cut us off mid-send
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)
            with contextlib.suppress(ConnectionResetError):  # closed with our bytes unread
                while sock.recv(65536):  # a challenge or a refusal, then EOF
                    pass

    check()


async def test_a_node_refuses_hundreds_of_fuzzed_connections_and_serves_a_client_throughout(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "unpickled"
    async with run_cluster(node("fuzzed")) as cluster:
        host, port = parse_address(cluster.address)
        async with Client(cluster.address, token=cluster.token) as client:
            served = 0
            async with asyncio.TaskGroup() as tasks:
                thrower = tasks.create_task(asyncio.to_thread(_throw, host, port, marker))
                while not thrower.done():
                    answer = await client.request([Command("e", "echo", [served])])
                    assert answer == {"e": served}
                    served += 1
        assert served > 1  # calls went on while the garbage arrived, not only after it
        assert not marker.exists()
        async with Client(cluster.address, token=cluster.token) as fresh:  # it is still up
            assert await fresh.request([Command("e", "echo", ["alive"])]) == {"e": "alive"}
