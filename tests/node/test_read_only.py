"""The read-only credential reads status and metrics; it can never submit, deploy or unpickle.

Everything a read-only connection sends is decoded without loading a single
pickle global, and its Blobs are never unpickled: a pickle that creates a
marker file when loaded, sent as a message header or inside a Blob, leaves
no file behind, and the node keeps serving a full-access client.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import urllib.error
import urllib.request
from pathlib import Path

import cluster_actors as ca
import pytest
from cli_support import command, free_port

from mpreg import AuthenticationError, Client
from mpreg.host.cluster import LocalCluster
from mpreg.protocol.admin import RotateToken
from mpreg.protocol.blob import Blob
from mpreg.protocol.codec import dumps_value
from mpreg.protocol.credentials import fingerprint, read_only_credential
from mpreg.protocol.frames import FrameKind, encode_frame
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.messages import (
    BatchRejected,
    Cancel,
    Deploy,
    MembersChanged,
    Release,
    Reply,
    StatusRequest,
    SubmitBatch,
    TaskDone,
    TaskSpec,
)
from mpreg.testing import node, run_cluster
from mpreg.transport.connection import Connection, parse_address
from mpreg.transport.dial import connect

pytestmark = pytest.mark.cluster


class _Touch:
    """Unpickling this creates a file: proof that something unpickled it."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


async def _cli(*args: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPREG_")}
    env["COLUMNS"] = "200"
    proc = await asyncio.create_subprocess_exec(
        *command(), *args, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    async with asyncio.timeout(60):
        out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def _scrape(port: int, bearer: str | None) -> tuple[int, str]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/metrics")
    if bearer is not None:
        request.add_header("Authorization", f"Bearer {bearer}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def _raw(cluster: LocalCluster, token: str) -> tuple[Connection, asyncio.Queue[object]]:
    """A bare connection authenticated with ``token``; the messages it receives, queued."""
    received: asyncio.Queue[object] = asyncio.Queue()
    host, port = parse_address(cluster.address)
    conn = await connect(
        host,
        port,
        Handshake("connector", token.encode(), PeerIdentity("client", "raw")),
        on_message=lambda _conn, message: received.put_nowait(message),
    )
    return conn, received


async def _next(received: asyncio.Queue[object], kind: type) -> object:
    async with asyncio.timeout(10):
        while True:
            message = await received.get()
            if isinstance(message, kind):
                return message


async def test_read_only_reads_status_and_metrics_and_nothing_else(tmp_path: Path) -> None:
    port = free_port()
    config = node("ro", functions=(ca.add,), metrics_port=port, metrics_auth=True)
    async with run_cluster(config) as cluster:
        reader = read_only_credential(cluster.token)

        # Status and top, from the command line, with the read-only credential.
        code, out, err = await _cli(
            "status", "--json", "--address", cluster.address, "--token", reader
        )
        assert code == 0, err
        assert [n["node"]["name"] for n in json.loads(out)["nodes"]] == ["ro"]
        code, out, err = await _cli(
            "top", "--once", "--interval", "0.2", "--address", cluster.address, "--token", reader
        )
        assert code == 0 and "ro" in out, err

        # Metrics: the read-only credential as the bearer; nothing else gets in.
        status, text = await asyncio.to_thread(_scrape, port, reader)
        assert status == 200 and "mpreg_node_resident_memory_bytes" in text
        for bearer in (None, cluster.token, "ro-wrong"):
            status, text = await asyncio.to_thread(_scrape, port, bearer)
            assert status == 401 and "token show --read-only" in text

        # The client API: a submit and a deploy are refused, typed and saying why.
        async with Client(cluster.address, token=reader) as client:
            assert (await client.status()).nodes
            with pytest.raises(AuthenticationError, match="read-only credential"):
                await client.submit("add", 1, 2, timeout=10)
            with pytest.raises(AuthenticationError, match="read-only credential"):
                await client.deploy(ca.Iris, timeout=10)
            assert client.connected  # refused, not cut off: status still answers
            assert (await client.status()).nodes

        # Marker pickles inside Blobs: refused, never unpickled (a worker would have).
        marker = tmp_path / "unpickled"
        evil = Blob([pickle.dumps(_Touch(marker))])
        conn, received = await _raw(cluster, reader)
        await _next(received, MembersChanged)
        spec = TaskSpec(1, "add", "add", frozenset(), evil, (), True)
        conn.send(SubmitBatch(1, (spec,)))
        rejected = await _next(received, BatchRejected)
        assert isinstance(rejected, BatchRejected) and rejected.error.kind == "auth"
        conn.send(Deploy(7, "evil", 1, evil))
        reply = await _next(received, Reply)
        assert isinstance(reply, Reply) and reply.error is not None and reply.error.kind == "auth"
        conn.send(RotateToken(8, fingerprint(cluster.token), b"salt", 1.0))
        reply = await _next(received, Reply)
        assert isinstance(reply, Reply) and reply.error is not None and reply.error.kind == "auth"
        # Letting go of a refused submit's tasks is dropped; the connection still answers.
        conn.send(Release((1,)))
        conn.send(Cancel((1,)))
        conn.send(StatusRequest(9))
        reply = await _next(received, Reply)
        assert isinstance(reply, Reply) and reply.request_id == 9 and reply.error is None

        # A marker pickle as the message header itself: the connection is closed.
        assert conn._transport is not None
        conn._transport.writelines(encode_frame(FrameKind.MESSAGE, pickle.dumps(_Touch(marker))))
        async with asyncio.timeout(10):
            await conn.closed

        # A raw pickle frame naming a harmless global is refused the same way.
        conn, received = await _raw(cluster, reader)
        assert conn._transport is not None
        conn._transport.writelines(encode_frame(FrameKind.MESSAGE, pickle.dumps(Path("/"))))
        async with asyncio.timeout(10):
            await conn.closed
        assert not marker.exists()

        # The node still serves a full-access client, with the same marker as a value
        # to prove the check above could fail: a full client's Blob is unpickled by a worker.
        async with Client(cluster.address, token=cluster.token) as client:
            assert await client.submit("add", 2, 3, timeout=30) == 5
        full, received = await _raw(cluster, cluster.token)
        args = dumps_value(((_Touch(marker), 1), {}))
        full.send(SubmitBatch(1, (TaskSpec(1, "add", "add", frozenset(), args, (), True),)))
        done = await _next(received, TaskDone)
        assert isinstance(done, TaskDone) and done.error is not None  # add(file, 1) raised
        assert marker.exists()
        full.close()
