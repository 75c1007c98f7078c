"""One authenticated, message-oriented TCP connection, built on asyncio.BufferedProtocol.

Protocol callbacks rather than streams: a bytearray frame parser and one
batched write per loop iteration are 2-3x the throughput of streams on this
machine class (docs/design.md). Messages are handed to ``on_message`` as they are
decoded, synchronously; handlers that need to wait start owned tasks.

Reads go to one buffer per thread, except a large frame's rest: the kernel
writes it into the frame's own region (``FrameDecoder.recv_target``). Limits
for authenticated peers too: frames up to ``max_frame`` bytes, an incomplete
frame holds only what arrived, and one that stops arriving for
``stall_timeout`` s closes the connection (mpreg.transport.stall).

Writes are batched per loop iteration (``call_soon``), never on a timer.
Backpressure: a connection whose peer does not keep up reports it through
``on_pressure``; async senders wait in :meth:`Connection.drain`, and a node
pauses reading from the clients feeding it work (mpreg.node.pressure).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from collections.abc import Callable
from enum import Enum
from typing import cast

from mpreg.errors import AuthenticationError, ClusterUnavailable, ProtocolError
from mpreg.protocol.codec import decode_message, decode_restricted, encode_message
from mpreg.protocol.credentials import Access
from mpreg.protocol.frames import DEFAULT_MAX_FRAME, Buffer, Frame, FrameKind, parts_size
from mpreg.protocol.handshake import FramedHandshake, Handshake, PeerIdentity
from mpreg.protocol.landing import pool as landing_pool
from mpreg.transport import tls
from mpreg.transport.addresses import crosses_hosts
from mpreg.transport.addresses import parse_address as parse_address  # importers predate the move
from mpreg.transport.refusals import RefusalLog, source_host
from mpreg.transport.stall import StallWatch

log = logging.getLogger(__name__)
# Refused and misbehaving peers, logged per source host at a bounded rate (one per process).
refusals = RefusalLog()

HANDSHAKE_TIMEOUT = 10.0
STALL_TIMEOUT = 30.0  # seconds without a byte while a frame is incomplete: the peer is cut
RECV_BYTES = 256 * 1024
HIGH_WATER = 8 * 1024 * 1024
FOREIGN_PREVIEW = 24  # bytes of a non-mpreg peer's greeting quoted in the error
FLUSH_PARTS = 32  # frame pieces queued before a write goes out mid-iteration

MessageHandler = Callable[["Connection", object], None]
CloseHandler = Callable[["Connection", BaseException | None], None]
PressureHandler = Callable[["Connection", bool], None]  # True: the peer is not keeping up


class _WriteBatch(threading.local):
    """Connections with output queued while some data_received runs (one loop per thread),
    and the thread's receive buffer: each read is parsed before the next one."""

    def __init__(self) -> None:
        self.depth = 0
        self.dirty: list[Connection] = []
        self.recv = memoryview(bytearray(RECV_BYTES))


_write_batch = _WriteBatch()


class ConnState(Enum):
    HANDSHAKING = "handshaking"
    OPEN = "open"
    CLOSED = "closed"


class Connection(asyncio.BufferedProtocol):
    """An mpreg link. ``ready`` resolves to the peer once authenticated."""

    def __init__(
        self,
        handshake: Handshake,
        *,
        on_message: MessageHandler | None = None,
        on_close: CloseHandler | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        stall_timeout: float = STALL_TIMEOUT,
    ) -> None:
        loop = asyncio.get_running_loop()
        self._loop = loop
        # Small frames only until the peer authenticated (see FramedHandshake);
        # its decoder then carries the messages.
        self._auth = FramedHandshake(handshake, max_frame)
        self._decoder = self._auth.decoder
        self.on_message = on_message
        self.on_close = on_close
        self.on_pressure: PressureHandler | None = None
        self.state = ConnState.HANDSHAKING
        self.peer: PeerIdentity | None = None
        self.peer_address = ""
        self.compress = False
        self.ready: asyncio.Future[PeerIdentity] = loop.create_future()
        self._decode = decode_message  # decode_restricted once a read-only peer authenticated
        self.closed: asyncio.Future[None] = loop.create_future()
        self._transport: asyncio.Transport | None = None
        self._out: list[Buffer] = []
        self._flush_scheduled = False
        self._can_write = asyncio.Event()
        self._can_write.set()
        self._timeout: asyncio.TimerHandle | None = None
        self._failed = False
        self._first_bytes = bytearray()  # what a peer first sent, for a clear refusal
        self._stall = StallWatch(loop, stall_timeout, lambda: self._decoder.pending, self._stalled)
        self._landing = False  # the last get_buffer() was a large frame's own region
        # Chunks of input so far: a driver's watchdog compares it once a second to
        # tell a silent node (one increment here, rather than a timestamp per message).
        self.received = 0
        # Bytes this side read and wrote: what a driver's values cost its connection.
        self.bytes_received = 0
        self.bytes_sent = 0

    def __repr__(self) -> str:
        who = f"{self.peer.role}:{self.peer.name}" if self.peer else "?"
        return f"<Connection {who} {self.peer_address} {self.state.name}>"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are not asyncio.Transport subclasses, only alike.
        self._transport = cast(asyncio.Transport, transport)
        self._transport.set_write_buffer_limits(high=HIGH_WATER)
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if peer:
            self.peer_address = f"{peer[0]}:{peer[1]}"
            local = transport.get_extra_info("sockname")
            self.compress = crosses_hosts(local[0] if isinstance(local, tuple) else "", peer[0])
        self._timeout = self._loop.call_later(HANDSHAKE_TIMEOUT, self._handshake_timed_out)
        first = self._auth.start()
        if first:
            self._write_now(first)

    def get_buffer(self, sizehint: int) -> memoryview:
        target = self._decoder.recv_target() if self.state is ConnState.OPEN else None
        if target is not None:
            self._landing = True
            return target
        self._landing = False
        return _write_batch.recv

    def buffer_updated(self, nbytes: int) -> None:
        self.received += 1
        self.bytes_received += nbytes
        batch = _write_batch
        batch.depth += 1
        try:
            if self._landing:
                self._received_large(nbytes)
            else:
                self._receive(batch.recv[:nbytes])
            if self._decoder.pending and self.state is ConnState.OPEN:
                self._stall.progressed()
        finally:
            batch.depth -= 1
            if not batch.depth and batch.dirty:
                dirty, batch.dirty = batch.dirty, []
                for conn in dirty:
                    conn._flush()

    def _received_large(self, nbytes: int) -> None:
        """``nbytes`` of a large frame arrived in its own region."""
        try:
            for frame in self._decoder.received(nbytes):
                if self._failed or self.state is not ConnState.OPEN:
                    return
                self._dispatch(decode_message(frame))
        except ProtocolError as exc:
            self._refused("protocol error", f"closing connection peer={self.peer_address}: {exc}")
            self._fail(exc)

    def _receive(self, data: Buffer) -> None:
        try:
            if self.state is ConnState.HANDSHAKING:
                frames = self._handshaking(data)
            else:
                frames = self._decoder.feed(data)
            for frame in frames:
                if self._failed or self.state is not ConnState.OPEN:
                    return
                if frame.kind is not FrameKind.MESSAGE:
                    raise ProtocolError("handshake frame after the handshake")
                self._dispatch(self._decode(frame))
        except ProtocolError as exc:
            reason = "protocol error"
            if self.state is ConnState.HANDSHAKING and not self._auth.frames_received:
                # Not one valid frame yet: most likely not mpreg at all (a web
                # server, ssh, a typo in the port). Say so, with what it sent.
                exc = ProtocolError(
                    f"{self.peer_address} is not an mpreg node or client "
                    f"(it sent {bytes(self._first_bytes)!r}: {exc})"
                )
                reason = "not mpreg"
                if tls.looks_like_tls(self._first_bytes):
                    exc = ProtocolError(f"{self.peer_address} speaks TLS; this node has no TLS")
                    reason = "TLS client, no TLS here"
            elif self.state is ConnState.HANDSHAKING:
                reason = "bad handshake"
            self._refused(reason, f"closing connection peer={self.peer_address}: {exc}")
            self._fail(exc)

    def connection_lost(self, exc: Exception | None) -> None:
        was = self.state
        self.state = ConnState.CLOSED
        if self._timeout:
            self._timeout.cancel()
        self._stall.cancel()
        # A half-received frame goes now (if something still holds this object too).
        self._decoder.clear()
        landing_pool.trim()
        self._can_write.set()
        if not self.ready.done():
            self.ready.set_exception(
                exc
                if isinstance(exc, AuthenticationError | ProtocolError)
                else ClusterUnavailable(
                    f"connection to {self.peer_address} closed during handshake"
                )
            )
            self.ready.exception()  # consumed: the opener reports it
        if not self.closed.done():
            self.closed.set_result(None)
        if was is ConnState.OPEN and self.on_close is not None:
            self.on_close(self, exc)

    def pause_writing(self) -> None:
        self._can_write.clear()
        if self.on_pressure is not None:
            self.on_pressure(self, True)

    def resume_writing(self) -> None:
        self._can_write.set()
        if self.on_pressure is not None:
            self.on_pressure(self, False)

    def pause_reading(self) -> None:
        """Stop taking bytes from this peer (the kernel's buffers then push back on it)."""
        if self._transport is not None and not self._transport.is_closing():
            self._transport.pause_reading()

    def resume_reading(self) -> None:
        if self._transport is not None and not self._transport.is_closing():
            self._transport.resume_reading()

    def send(self, message: object) -> None:
        """Queue ``message``; it is written when the current batch of work ends.

        Inside ``data_received`` (a handler answering or forwarding) that is
        when it returns: every message one chunk of input produced leaves in
        one write per connection, without waiting for another loop
        iteration. Elsewhere it is the end of this loop iteration.
        """
        if self.state is not ConnState.OPEN:
            raise ClusterUnavailable(f"connection to {self.peer_address} is closed")
        out = self._out
        out.extend(encode_message(message, compress=self.compress))
        if len(out) >= FLUSH_PARTS:
            # A full batch leaves now, so the next process starts on it while
            # this one keeps working: both cores busy, not one after the other.
            self._flush()
            return
        if not self._flush_scheduled:
            self._flush_scheduled = True
            batch = _write_batch
            if batch.depth:
                batch.dirty.append(self)  # written as soon as this data_received returns
            else:
                self._loop.call_soon(self._flush)

    async def drain(self) -> None:
        """Wait while the peer is not keeping up (the one backpressure point)."""
        await self._can_write.wait()
        if self.state is ConnState.CLOSED:
            raise ClusterUnavailable(f"connection to {self.peer_address} is closed")

    def close(self) -> None:
        if self._transport is not None and self.state is not ConnState.CLOSED:
            self._flush()
            self._transport.close()

    def abort(self) -> None:
        """Drop the connection now, with whatever is still queued for the peer.

        For a peer that stopped answering: close() would first wait for it to
        read what is queued, which a hung peer never does.
        """
        if self._transport is not None and self.state is not ConnState.CLOSED:
            self._transport.abort()

    def _flush(self) -> None:
        self._flush_scheduled = False
        if self._out and self._transport is not None and not self._transport.is_closing():
            out, self._out = self._out, []
            self.bytes_sent += parts_size(out)
            self._transport.writelines(out)

    def _write_now(self, parts: list[Buffer]) -> None:
        assert self._transport is not None
        self.bytes_sent += parts_size(parts)
        self._transport.writelines(parts)

    def _handshaking(self, data: Buffer) -> list[Frame]:
        """Drive the handshake with ``data``; the frames that came after it, once open."""
        if len(self._first_bytes) < FOREIGN_PREVIEW:
            self._first_bytes += data[: FOREIGN_PREVIEW - len(self._first_bytes)]
        progress = self._auth.receive(data)
        if progress.send:
            self._write_now(progress.send)
        if progress.failure is not None:
            self._refused(
                "handshake failed", f"handshake failed peer={self.peer_address}: {progress.failure}"
            )
            self._fail(progress.failure)
            return []
        if progress.peer is None:
            return []
        if self.ready.done():
            # Its opener gave up (cancelled, timed out) as the welcome arrived: nobody
            # will use it, and its messages have nobody to go to.
            self.abort()
            return []
        self.peer = progress.peer
        if progress.peer.access is Access.READ:
            # Set before the frames that came with the handshake are decoded.
            self._decode = decode_restricted
        self.state = ConnState.OPEN
        if self._timeout:
            self._timeout.cancel()
        self.ready.set_result(progress.peer)
        return progress.frames

    def _dispatch(self, message: object) -> None:
        if self.on_message is None:
            return
        try:
            self.on_message(self, message)
        except ProtocolError:
            raise
        except Exception:
            log.exception(
                "handler failed peer=%s message=%s", self.peer_address, type(message).__name__
            )

    def _stalled(self, idle: float) -> None:
        """Cut a peer whose frame stopped arriving: it holds this side's memory."""
        log.warning(
            "closing connection peer=%s: frame stalled, no bytes for %.1fs with %d bytes held",
            self.peer_address,
            idle,
            self._decoder.pending,
        )
        self._decoder.clear()
        self.abort()

    def _handshake_timed_out(self) -> None:
        if self.state is ConnState.HANDSHAKING:
            self._refused("handshake timed out", f"handshake timed out peer={self.peer_address}")
            self._fail(ProtocolError("handshake timed out"))

    def _refused(self, reason: str, detail: str) -> None:
        refusals.refused(source_host(self.peer_address), reason, detail)

    def _fail(self, exc: BaseException) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
            self.ready.exception()
        self._failed = True
        if self._transport is not None:
            # close(), not abort(): a refusal message still goes out first.
            self._transport.close()
