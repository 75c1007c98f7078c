"""Limits for authenticated peers: a half-sent frame is cut, and its memory goes back.

The peer here holds the cluster token and passes the real handshake; then it
misbehaves on the wire (a length prefix over the limit, a frame that stops
half-way). The node's memory is read from /proc while another client keeps
calling it.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import struct
import time
from collections.abc import AsyncIterator, Iterator

import cluster_actors as ca
import pytest

from mpreg import Client, Command, SerializationError
from mpreg.config import DEFAULT_MAX_FRAME_BYTES
from mpreg.host.cluster import LocalCluster
from mpreg.protocol.codec import limit_frames
from mpreg.protocol.frames import PROTOCOL_VERSION, FrameKind
from mpreg.protocol.handshake import FramedHandshake, Handshake, PeerIdentity
from mpreg.status import rss_bytes as _rss
from mpreg.testing import node, run_cluster
from mpreg.transport.connection import parse_address

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]

MiB = 1 << 20
STALL = 1.5  # the nodes' frame_stall_timeout here: short, so the tests wait little


@pytest.fixture(autouse=True)
def _default_value_limit() -> Iterator[None]:
    """Connecting to a node sets this process's value limit to the node's: undo it."""
    yield
    limit_frames(DEFAULT_MAX_FRAME_BYTES)


def _read_log(pid: int) -> str | None:
    """Node ``pid``'s stderr so far, if it is a file (pytest captures it); None otherwise."""
    path = f"/proc/{pid}/fd/2"
    if not os.path.isfile(path):
        return None  # a terminal or a pipe (pytest -s): nothing to read back
    with open(path, errors="replace") as f:
        return f.read()


async def _logged(cluster: LocalCluster, text: str) -> None:
    """Wait until the node logged ``text`` (when its log can be read back at all)."""
    async with asyncio.timeout(10):
        while True:
            log = _read_log(cluster.nodes[0].pid)
            if log is None or text in log:
                return
            await asyncio.sleep(0.02)  # a file offers nothing to wait on: poll it


async def _authenticated(
    cluster: LocalCluster,
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A raw socket that passed the real handshake with the cluster token, as a client."""
    host, port = parse_address(cluster.address)
    reader, writer = await asyncio.open_connection(host, port)
    identity = PeerIdentity("client", "limits-test")
    auth = FramedHandshake(Handshake("connector", cluster.token.encode(), identity))
    writer.write(b"".join(bytes(p) for p in auth.start()))
    async with asyncio.timeout(10):
        while True:
            data = await reader.read(65536)
            assert data, "the node closed during the handshake"
            progress = auth.receive(data)
            writer.write(b"".join(bytes(p) for p in progress.send))
            assert progress.failure is None, progress.failure
            if progress.peer is not None:
                return reader, writer


def _prefix(body_len: int, nbufs: int = 1) -> bytes:
    """The 8-byte prefix of a MESSAGE frame announcing ``body_len`` bytes."""
    return struct.pack("!IBBH", body_len, PROTOCOL_VERSION, FrameKind.MESSAGE, nbufs)


async def _closed_by_node(reader: asyncio.StreamReader, timeout: float = 10) -> None:
    """Wait until the node hangs up (EOF, or a reset with our bytes unread)."""
    async with asyncio.timeout(timeout):
        with contextlib.suppress(ConnectionResetError):
            while await reader.read(65536):
                pass


@contextlib.asynccontextmanager
async def _served_throughout(cluster: LocalCluster) -> AsyncIterator[list[float]]:
    """Another client calling the node back to back; yields the times its calls came back."""
    answered: list[float] = []
    stop = asyncio.Event()

    async def calls(client: Client) -> None:
        while not stop.is_set():
            assert await client.request([Command("e", "echo", ["alive"])], timeout=10) == {
                "e": "alive"
            }
            answered.append(time.monotonic())
            await asyncio.sleep(0.01)  # a steady trickle, not a flood

    async with Client(cluster.address, token=cluster.token) as client:
        task = asyncio.create_task(calls(client))
        try:
            yield answered
        finally:
            stop.set()
            await task  # re-raises a call that failed


def _answered_between(answered: list[float], start: float, end: float) -> int:
    return sum(start <= t <= end for t in answered)


async def _settled_rss(pid: int, ceiling: int) -> int:
    """The node's RSS once it is at most ``ceiling`` (or what it is after 10 s)."""
    deadline = time.monotonic() + 10
    while True:
        rss = _rss(pid)
        if rss <= ceiling or time.monotonic() > deadline:
            return rss
        await asyncio.sleep(0.05)  # RSS falls when the node gets to the close: poll it


async def test_a_half_sent_frame_is_cut_and_its_memory_given_back_while_others_are_served() -> None:
    config = node("limits", workers=1, frame_stall_timeout=STALL)
    async with run_cluster(config) as cluster, _served_throughout(cluster) as answered:
        pid = cluster.nodes[0].pid
        async with asyncio.timeout(10):
            while True:  # warmed up: the baseline is a serving node's
                if len(answered) >= 20:
                    break
                await asyncio.sleep(0.01)
        baseline = _rss(pid)

        # 1. A prefix over the limit is refused from its 8 bytes: nothing is buffered.
        reader, writer = await _authenticated(cluster)
        writer.write(_prefix(500 * MiB) + b"\0" * 65536)
        await _closed_by_node(reader)
        writer.close()
        await _logged(cluster, f"exceeds the {DEFAULT_MAX_FRAME_BYTES}-byte limit")

        # 2. A frame under the limit, 100 MiB of it sent, then nothing: the node holds
        # what arrived, cuts the connection after the stall timeout, and gives it back.
        sent = 100 * MiB
        reader, writer = await _authenticated(cluster)
        start = time.monotonic()
        writer.write(_prefix(120 * MiB) + b"\1" * sent)
        await writer.drain()
        async with asyncio.timeout(20):
            while True:
                held = _rss(pid)
                if held >= baseline + sent // 2:
                    break
                await asyncio.sleep(0.02)  # the node is reading it in: poll its RSS
        await _closed_by_node(reader, timeout=STALL + 15)
        cut = time.monotonic()
        writer.close()
        await _logged(cluster, "frame stalled")
        after = await _settled_rss(pid, baseline + 40 * MiB)
        calls_during = _answered_between(answered, start, cut)

    print(
        f"\nnode RSS: baseline {baseline / MiB:.0f} MiB, holding the half frame "
        f"{held / MiB:.0f} MiB, after the cut {after / MiB:.0f} MiB; "
        f"{calls_during} calls answered in the {cut - start:.1f}s of the stall"
    )
    assert cut - start >= STALL * 0.9  # cut by the stall timeout, not earlier
    assert after <= baseline + 40 * MiB
    assert calls_during >= 10  # the other client was served throughout


async def test_a_stalled_frame_closes_only_that_connection() -> None:
    config = node("stall", workers=1, frame_stall_timeout=STALL)
    async with (
        run_cluster(config) as cluster,
        Client(cluster.address, token=cluster.token) as idle,
    ):
        reader, writer = await _authenticated(cluster)
        start = time.monotonic()
        writer.write(_prefix(2 * MiB) + b"\0" * 4096)  # 4 KiB of a 2 MiB frame, then silence
        await writer.drain()
        await _closed_by_node(reader, timeout=STALL + 10)
        waited = time.monotonic() - start
        writer.close()
        await _logged(cluster, "frame stalled")
        # A connection idle between frames for as long is not a stall: it still works.
        assert await idle.request([Command("e", "echo", [1])], timeout=10) == {"e": 1}
    assert STALL * 0.9 <= waited < STALL + 5


async def test_values_over_the_nodes_limit_are_refused_where_they_are_made() -> None:
    config = node("small", workers=0, actors=(ca.Timed,), max_frame_bytes=8 * MiB)
    async with (
        run_cluster(config) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):
        with pytest.raises(SerializationError) as argument_error:
            await client.request([Command("a", "size_of", [b"x" * (10 * MiB)], ["timed"])])
        with pytest.raises(SerializationError) as result_error:
            await client.request([Command("r", "big", [10 * MiB], ["timed"])], timeout=30)
        # Under the limit still travels, both ways.
        ok = await client.request([Command("s", "size_of", [b"x" * (7 * MiB)], ["timed"])])
    for error in (argument_error.value, result_error.value):
        assert "8,323,072 bytes" in str(error)  # 8 MiB less the message headroom
        assert "--max-frame-mb" in str(error)
    assert ok == {"s": 7 * MiB}
