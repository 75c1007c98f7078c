"""A node survives any bytes a peer sends, and unpickles nothing before authentication."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pickle
import stat
import struct
from pathlib import Path

import pytest

from mpreg import AuthenticationError, Client, Command
from mpreg.host.cluster import LocalCluster
from mpreg.protocol.frames import HANDSHAKE_MAX_FRAME, PROTOCOL_VERSION, FrameKind, encode_frame
from mpreg.protocol.handshake import local_versions
from mpreg.status import rss_bytes as _rss
from mpreg.transport.connection import parse_address

pytestmark = pytest.mark.cluster


class _Touch:
    """Unpickling this creates a file: proof that a node unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def _frame(kind: FrameKind, header: bytes, buffers: tuple[bytes, ...] = ()) -> bytes:
    """One frame as bytes; large buffers lz4-compressed, as between hosts."""
    return b"".join(bytes(p) for p in encode_frame(kind, header, buffers, compress=True))


def _read_log(pid: int) -> str | None:
    """Node ``pid``'s stderr so far, if it is a file (pytest captures it); None otherwise."""
    path = f"/proc/{pid}/fd/2"
    if not stat.S_ISREG(os.stat(path).st_mode):
        return None  # a terminal or a pipe (pytest -s): nothing to read back
    with open(path, errors="replace") as f:
        return f.read()


async def _node_logged(cluster: LocalCluster, text: str) -> str | None:
    """Wait until the node's log contains ``text``; the log, or None if it cannot be read."""
    pid = cluster.nodes[0].pid
    async with asyncio.timeout(10):
        while True:
            log = _read_log(pid)
            if log is None or text in log:
                return log
            await asyncio.sleep(0.02)  # a file offers nothing to wait on: poll it


# 12 MiB of zeros lz4-compress to ~48 KiB: a bomb that fits the pre-authentication limit.
_BOMB_SIZE = 12 * 2**20


async def _open(cluster: LocalCluster) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = parse_address(cluster.address)
    return await asyncio.open_connection(host, port)


async def _closed_by_node(reader: asyncio.StreamReader) -> None:
    """Wait until the node hangs up: EOF, or a reset when it closed with our bytes unread."""
    async with asyncio.timeout(10):
        try:
            while await reader.read(65536):
                pass
        except ConnectionResetError:
            pass


async def _still_serves(cluster: LocalCluster) -> None:
    async with Client(cluster.address, token=cluster.token) as client:
        assert await client.request([Command("e", "echo", ["alive"])]) == {"e": "alive"}


async def _read_handshake(reader: asyncio.StreamReader) -> dict[str, object]:
    prefix = await reader.readexactly(8)
    body_len = struct.unpack("!IBBH", prefix)[0]
    body = await reader.readexactly(body_len)
    (header_len,) = struct.unpack_from("!I", body)
    return json.loads(body[4 : 4 + header_len])  # type: ignore[no-any-return]


async def test_wrong_token_is_refused_and_the_node_keeps_serving(one_node: LocalCluster) -> None:
    with pytest.raises(AuthenticationError):
        async with Client(one_node.address, token="not-the-token"):
            pass
    await _still_serves(one_node)


async def test_pickle_before_authentication_is_never_unpickled(
    one_node: LocalCluster, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    reader, writer = await _open(one_node)
    writer.write(_frame(FrameKind.MESSAGE, pickle.dumps(_Touch(str(marker)))))
    await _closed_by_node(reader)
    writer.close()
    assert not marker.exists()
    await _still_serves(one_node)


async def test_pickle_pipelined_after_a_bad_proof_is_never_unpickled(
    one_node: LocalCluster, tmp_path: Path
) -> None:
    marker = tmp_path / "unpickled"
    reader, writer = await _open(one_node)
    hello = dict(type="hello", nonce="00", role="client", name="evil", meta={}, **local_versions())
    writer.write(_frame(FrameKind.HANDSHAKE, json.dumps(hello).encode()))
    challenge = await _read_handshake(reader)
    assert challenge["type"] == "challenge"
    proof = json.dumps({"type": "proof", "proof": "0" * 64}).encode()
    writer.write(
        _frame(FrameKind.HANDSHAKE, proof)
        + _frame(FrameKind.MESSAGE, pickle.dumps(_Touch(str(marker))))
    )
    refusal = await _read_handshake(reader)
    assert refusal == {"type": "refuse", "reason": "authentication failed: wrong cluster token"}
    await _closed_by_node(reader)
    writer.close()
    assert not marker.exists()
    await _still_serves(one_node)


async def test_version_mismatch_is_refused_with_a_clear_reason(one_node: LocalCluster) -> None:
    reader, writer = await _open(one_node)
    hello = dict(type="hello", nonce="00", role="client", name="old", meta={}, **local_versions())
    hello["python"] = "2.7"
    writer.write(_frame(FrameKind.HANDSHAKE, json.dumps(hello).encode()))
    refusal = await _read_handshake(reader)
    assert refusal["type"] == "refuse"
    assert "python version mismatch" in str(refusal["reason"])
    await _closed_by_node(reader)
    writer.close()


@pytest.mark.parametrize(
    "payload",
    [
        os.urandom(4096),
        b"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        struct.pack("!IBBH", 2**31, PROTOCOL_VERSION, FrameKind.HANDSHAKE, 0),  # oversized
        struct.pack("!IBBH", 100, PROTOCOL_VERSION, 99, 0) + bytes(100),  # unknown kind
        _frame(FrameKind.HANDSHAKE, b"{not json"),
        _frame(FrameKind.HANDSHAKE, b'{"type": "proof"}'),  # out of order
        _frame(FrameKind.HANDSHAKE, b"[1, 2]"),
    ],
    ids=["random", "http", "oversized", "unknown-kind", "bad-json", "out-of-order", "not-object"],
)
async def test_garbage_closes_the_connection_and_the_node_keeps_serving(
    one_node: LocalCluster, payload: bytes
) -> None:
    reader, writer = await _open(one_node)
    writer.write(payload)
    await _closed_by_node(reader)
    writer.close()
    await _still_serves(one_node)


async def test_truncated_frame_then_hangup_leaves_the_node_serving(one_node: LocalCluster) -> None:
    _, writer = await _open(one_node)
    writer.write(_frame(FrameKind.HANDSHAKE, b'{"type": "hello"}')[:11])
    await writer.drain()
    writer.close()
    await _still_serves(one_node)


async def test_unauthenticated_huge_frame_is_cut_off_and_the_node_does_not_grow(
    one_node: LocalCluster,
) -> None:
    await _still_serves(one_node)  # a session's allocations happen before the baseline
    pid = one_node.nodes[0].pid
    before = _rss(pid)
    _, writer = await _open(one_node)
    announced = 100 * 2**20
    writer.write(struct.pack("!IBBH", announced, PROTOCOL_VERSION, FrameKind.HANDSHAKE, 0))
    chunk = bytes(2**20)
    sent = 0
    with contextlib.suppress(ConnectionError):
        async with asyncio.timeout(10):
            while sent < announced:
                writer.write(chunk)
                await writer.drain()
                sent += len(chunk)
    assert sent < announced
    writer.close()
    assert _rss(pid) - before < 4 * 2**20
    await _still_serves(one_node)


@pytest.mark.parametrize(
    ("payload", "logged"),
    [
        (_frame(FrameKind.HANDSHAKE, b'{"type": "hello"}', (b"x",)), "handshake frame carries"),
        (
            _frame(FrameKind.HANDSHAKE, b'{"type": "hello"}', (bytes(_BOMB_SIZE),)),
            "handshake frame carries",
        ),
        (_frame(FrameKind.MESSAGE, b"x", (bytes(_BOMB_SIZE),)), "lz4 buffer declares"),
        (_frame(FrameKind.HANDSHAKE, b"[" * (HANDSHAKE_MAX_FRAME - 64)), "nests too deeply"),
        (
            _frame(FrameKind.HANDSHAKE, b'{"type": "hello", "nonce": ' + b"9" * 5000 + b"}"),
            "not acceptable JSON",
        ),
    ],
    ids=[
        "handshake-buffers",
        "handshake-lz4-bomb",
        "lz4-bomb-before-auth",
        "deep-json",
        "huge-int",
    ],
)
async def test_hostile_handshake_is_closed_with_a_log_line_and_the_node_keeps_serving(
    one_node: LocalCluster, payload: bytes, logged: str
) -> None:
    reader, writer = await _open(one_node)
    writer.write(payload)
    await _closed_by_node(reader)
    writer.close()
    log = await _node_logged(one_node, logged)
    if log is not None:
        assert "closing connection" in log
        assert "Traceback" not in log  # no "Fatal error on transport"
    await _still_serves(one_node)
