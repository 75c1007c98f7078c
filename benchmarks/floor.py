"""The raw two-hop floor: client -> router process -> worker process -> back.

The physical floor for mpreg's shape in Python: uvloop, ``asyncio.Protocol``
with a bytearray frame parser, one batched ``writelines`` per loop iteration,
a router that reads only a fixed 8-byte header and forwards payloads it never
looks at, and a worker that echoes. No pickling, no planning, no retries.

A frame is ``!I`` (length of what follows) then the header ``!IBBH``
(message id, op, hops left, target) then the payload. The router answers
``hops`` > 1 itself by sending the worker's reply back to the same worker, so
a k-step chain costs one client round trip (as an mpreg DAG does). Target
``ROUND_ROBIN`` spreads calls over every worker but the first (the replicas).

Run as ``python -m benchmarks.floor router`` (prints its port) and
``python -m benchmarks.floor worker PORT INDEX``; :class:`FloorClient` is the
driver side.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import socket
import struct
import subprocess
import sys
from collections.abc import Callable
from typing import Any

_LEN = struct.Struct("!I")
_HEAD = struct.Struct("!IBBH")
_PREFIX = _LEN.size + _HEAD.size

OP_CALL = 1
OP_REPLY = 2
OP_HELLO_CLIENT = 3
OP_HELLO_WORKER = 4
ROUND_ROBIN = 0xFFFF

FrameHandler = Callable[[int, int, int, int, Any], None]


class FramedProtocol(asyncio.Protocol):
    """Length-prefixed frames in, ``on_frame(id, op, hops, target, payload)`` out.

    Writes queued during one loop iteration leave in one ``writelines``.
    """

    def __init__(self, on_frame: FrameHandler | None = None) -> None:
        self.on_frame = on_frame
        self.transport: asyncio.Transport | None = None
        self._buf = bytearray()
        self._out: list[Any] = []
        self._flush_scheduled = False
        self._loop = asyncio.get_running_loop()
        self.lost: asyncio.Future[None] = self._loop.create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.lost.done():
            self.lost.set_result(None)

    def data_received(self, data: bytes) -> None:
        buf = self._buf
        buf += data
        pos = 0
        end = len(buf)
        on_frame = self.on_frame
        while end - pos >= _PREFIX:
            (size,) = _LEN.unpack_from(buf, pos)
            stop = pos + _LEN.size + size
            if stop > end:
                break
            mid, op, hops, target = _HEAD.unpack_from(buf, pos + _LEN.size)
            if pos == 0 and stop == end and size > 65536:
                # A big frame filling the buffer: hand the buffer over, no copy.
                payload: Any = memoryview(buf)[_PREFIX:]
                self._buf = bytearray()
                pos = stop
                assert on_frame is not None
                on_frame(mid, op, hops, target, payload)
                return
            payload = bytes(buf[pos + _PREFIX : stop])
            pos = stop
            assert on_frame is not None
            on_frame(mid, op, hops, target, payload)
        if pos:
            del buf[:pos]

    def send(self, mid: int, op: int, hops: int, target: int, payload: Any) -> None:
        size = _HEAD.size + memoryview(payload).nbytes
        self._out.append(_LEN.pack(size) + _HEAD.pack(mid, op, hops, target))
        self._out.append(payload)
        if not self._flush_scheduled:
            self._flush_scheduled = True
            self._loop.call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        out, self._out = self._out, []
        if self.transport is not None and not self.transport.is_closing():
            self.transport.writelines(out)


# --- router -------------------------------------------------------------------


class Router:
    """Routes client calls to workers on the header alone."""

    def __init__(self) -> None:
        self.workers: dict[int, FramedProtocol] = {}
        self.replicas: list[FramedProtocol] = []
        self._rr = itertools.count()
        self._ids = itertools.count(1)
        # router id -> (client link, client's id, hops left, worker link)
        self.pending: dict[int, tuple[FramedProtocol, int, int, FramedProtocol]] = {}

    def accept(self) -> FramedProtocol:
        link = FramedProtocol()
        link.on_frame = lambda mid, op, hops, target, payload: self._on_frame(
            link, mid, op, hops, target, payload
        )
        return link

    def _on_frame(
        self, link: FramedProtocol, mid: int, op: int, hops: int, target: int, payload: Any
    ) -> None:
        if op == OP_CALL:
            if target == ROUND_ROBIN:
                worker = self.replicas[next(self._rr) % len(self.replicas)]
            else:
                worker = self.workers[target]
            rid = next(self._ids)
            self.pending[rid] = (link, mid, hops, worker)
            worker.send(rid, OP_CALL, 0, 0, payload)
        elif op == OP_REPLY:
            client, cid, hops, worker = self.pending.pop(mid)
            if hops > 1:
                self.pending[mid] = (client, cid, hops - 1, worker)
                worker.send(mid, OP_CALL, 0, 0, payload)
            else:
                client.send(cid, OP_REPLY, 0, 0, payload)
        elif op == OP_HELLO_WORKER:
            self.workers[target] = link
            if target > 0:
                self.replicas.append(link)
            link.send(0, OP_HELLO_WORKER, 0, target, b"")
        elif op == OP_HELLO_CLIENT:
            link.send(0, OP_HELLO_CLIENT, 0, len(self.workers), b"")


async def run_router() -> None:
    router = Router()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(router.accept, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    done: asyncio.Future[None] = loop.create_future()

    def on_stdin() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(sys.stdin.fileno(), on_stdin)
    await done  # the driver closes our stdin (or dies): stop


# --- worker -------------------------------------------------------------------


async def run_worker(port: int, index: int) -> None:
    loop = asyncio.get_running_loop()
    link = FramedProtocol()

    def on_frame(mid: int, op: int, hops: int, target: int, payload: Any) -> None:
        if op == OP_CALL:
            link.send(mid, OP_REPLY, 0, 0, payload)
        elif op == OP_HELLO_WORKER:
            print("ready", flush=True)  # the router knows us: the driver may call

    link.on_frame = on_frame
    await loop.create_connection(lambda: link, "127.0.0.1", port)
    link.send(0, OP_HELLO_WORKER, 0, index, b"")
    await link.lost


# --- driver side ----------------------------------------------------------------


class FloorClient:
    """The driver's link to the router: ``await call(payload)`` returns the echo."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self.link: FramedProtocol | None = None

    async def connect(self, port: int) -> None:
        loop = asyncio.get_running_loop()
        link = FramedProtocol(self._on_frame)
        await loop.create_connection(lambda: link, "127.0.0.1", port)
        self.link = link

    def _on_frame(self, mid: int, op: int, hops: int, target: int, payload: Any) -> None:
        future = self._waiting.pop(mid, None)
        if future is not None:
            future.set_result(payload)

    def call(self, payload: Any, *, target: int = 0, hops: int = 1) -> asyncio.Future[Any]:
        assert self.link is not None
        mid = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._waiting[mid] = future
        self.link.send(mid, OP_CALL, hops, target, payload)
        return future

    def close(self) -> None:
        if self.link is not None and self.link.transport is not None:
            self.link.transport.close()


class FloorProcesses:
    """The router and worker processes the driver started (``stop()`` ends them)."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[bytes]] = []
        self.port = 0

    def _spawn(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.floor", *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.procs.append(proc)
        return proc

    def start_router(self) -> int:
        proc = self._spawn("router")
        assert proc.stdout is not None
        self.port = int(proc.stdout.readline())
        return self.port

    def start_worker(self, index: int) -> None:
        proc = self._spawn("worker", str(self.port), str(index))
        assert proc.stdout is not None
        if proc.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"floor worker {index} did not start")

    def stop(self) -> None:
        for proc in self.procs:
            if proc.stdin is not None:
                proc.stdin.close()
        for proc in self.procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def main(argv: list[str]) -> None:
    import uvloop

    if sys.platform == "linux":  # die with the driver even after kill -9
        import ctypes

        ctypes.CDLL("libc.so.6").prctl(1, 9)  # PR_SET_PDEATHSIG, SIGKILL
    match argv:
        case ["router"]:
            uvloop.run(run_router())
        case ["worker", port, index]:
            uvloop.run(run_worker(int(port), int(index)))
        case _:
            raise SystemExit("usage: python -m benchmarks.floor router | worker PORT INDEX")
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
