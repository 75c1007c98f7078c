"""A blocking-socket mpreg connection, for sync calls made from the caller's thread.

The sync facade's requests would otherwise hop to the client's event-loop
thread and back: two cross-thread wake-ups, 55-80 us per call on this
machine class (benchmarks/README.md). Same handshake, same frames, same
messages as :class:`~mpreg.transport.connection.Connection`; one caller at
a time.
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import threading
import time
from collections import deque

from mpreg.errors import AuthenticationError, ClusterUnavailable, DeadlineExceeded, ProtocolError
from mpreg.protocol.codec import decode_message, encode_message
from mpreg.protocol.frames import Buffer, Frame, FrameDecoder, FrameKind
from mpreg.protocol.handshake import FramedHandshake, Handshake, PeerIdentity
from mpreg.transport import tls

RECV_BYTES = 256 * 1024
JOIN_BELOW = 64 * 1024  # frames smaller than this are joined into one send


class BlockingConnection:
    """An authenticated connection on a blocking socket. Not thread-safe."""

    def __init__(self, sock: socket.socket, peer: PeerIdentity, decoder: FrameDecoder) -> None:
        self._sock = sock
        self.peer = peer
        self._decoder = decoder
        self._frames: deque[object] = deque()
        self._blocking = True  # the socket is in blocking mode (no timeout)
        self._recv_buf = bytearray(RECV_BYTES)
        self._recv_view = memoryview(self._recv_buf)
        self.closed = False
        self._gone = ""  # why interrupt() cut the connection, for the caller it wakes
        # Held by close() and interrupt(): the descriptor is never shut down after it
        # was freed (and perhaps reused by another socket). Never taken per call.
        self._closing = threading.Lock()

    @classmethod
    def open(
        cls,
        host: str,
        port: int,
        handshake: Handshake,
        *,
        timeout: float = 10.0,
        context: ssl.SSLContext | None = None,
    ) -> BlockingConnection:
        """Dial (over TLS with ``context``) and authenticate; raises ClusterUnavailable or
        AuthenticationError (as :func:`mpreg.transport.dial.connect` does)."""
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise ClusterUnavailable(f"cannot connect to {host}:{port}: {exc}") from exc
        heard = secured = False
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=host)  # the TLS handshake
                secured = True
            auth = FramedHandshake(handshake)
            sock.sendall(b"".join(auth.start()))
            while True:
                data = sock.recv(RECV_BYTES)
                if not data:
                    raise _closed_early(host, port, context, heard)
                heard = True
                progress = auth.receive(data)
                if progress.send:
                    sock.sendall(b"".join(progress.send))
                if progress.failure is not None:
                    raise progress.failure
                if progress.peer is not None:
                    sock.settimeout(None)
                    conn = cls(sock, progress.peer, auth.decoder)
                    conn._take(progress.frames)  # messages that arrived with the welcome
                    return conn
        except TimeoutError as exc:
            sock.close()
            raise ClusterUnavailable(f"no answer from {host}:{port} within {timeout:g}s") from exc
        except (OSError, AuthenticationError, ProtocolError, ClusterUnavailable) as exc:
            sock.close()
            if isinstance(exc, ssl.SSLError | ConnectionResetError) and context is not None:
                address = f"{host}:{port}"
                # Cut during the TLS handshake: a plain node; after it, before a word
                # of ours was answered: our certificate was refused.
                plainly = tls.refused_after_handshake if secured else tls.plain_node
                raise tls.explain(exc, address) or plainly(address) from exc
            if isinstance(exc, OSError) and not isinstance(exc, ClusterUnavailable):
                raise ClusterUnavailable(f"connection to {host}:{port} failed: {exc}") from exc
            raise

    def quiet(self) -> bool:
        """True if this idle connection is open and nothing waits to be read; never blocks.

        For a caller about to send on a connection that waited: a send into a
        connection its peer already closed would look, once the answer never
        comes, like a loss after the message went out; and whatever the peer
        said meanwhile (a goodbye, a late answer) is news that the caller
        would rather act on by opening afresh.
        """
        if self.closed or self._frames:
            return False
        if isinstance(self._sock, ssl.SSLSocket) and self._sock.pending():
            return False  # decrypted, not read yet
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            return False
        return not readable  # readable, idle: its end, a reset, or something it said

    def send(self, message: object, deadline: float | None = None) -> None:
        """Send one message; DeadlineExceeded past ``deadline`` (time.monotonic()).

        A send cut off by its deadline leaves half a frame on the wire, so the
        connection is closed (the next call opens a new one).
        """
        parts = encode_message(message)
        self._set_deadline(deadline)
        try:
            if sum(len(memoryview(p)) for p in parts) < JOIN_BELOW:
                self._sock.sendall(b"".join(parts))
            else:
                self._send_parts(parts)
        except TimeoutError:
            self.close()
            raise DeadlineExceeded("the request could not be sent before its deadline") from None
        except OSError as exc:
            self.close()
            raise ClusterUnavailable(f"lost the connection: {exc}") from exc

    def _set_deadline(self, deadline: float | None) -> None:
        if deadline is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded("no answer before the deadline")
            self._sock.settimeout(remaining)
            self._blocking = False
        elif not self._blocking:
            # Only when it changes: each settimeout() is a syscall.
            self._sock.settimeout(None)
            self._blocking = True

    def _send_parts(self, parts: list[Buffer]) -> None:
        if isinstance(self._sock, ssl.SSLSocket):  # which has no sendmsg()
            for part in parts:
                self._sock.sendall(part)
            return
        views = [memoryview(p).cast("B") for p in parts]
        while views:
            sent = self._sock.sendmsg(views)
            while views and sent >= len(views[0]):
                sent -= len(views[0])
                views.pop(0)
            if views and sent:
                views[0] = views[0][sent:]

    def receive(self, deadline: float | None) -> object:
        """The next message; DeadlineExceeded past ``deadline`` (time.monotonic())."""
        while not self._frames:
            self._set_deadline(deadline)
            try:
                # Into one reused buffer: recv(n) would allocate (and, at this
                # size, mmap and fault in) a fresh n-byte object on every call;
                # the rest of a large frame straight into that frame's region.
                target = self._decoder.recv_target()
                size = self._sock.recv_into(self._recv_buf if target is None else target)
            except TimeoutError:
                raise DeadlineExceeded("no answer before the deadline") from None
            except OSError as exc:
                self.close()
                raise ClusterUnavailable(f"lost the connection: {exc}") from exc
            if not size:
                self.close()
                raise ClusterUnavailable(self._gone or "the node closed the connection")
            try:
                if target is None:
                    self._take(self._decoder.feed(self._recv_view[:size]))
                else:
                    self._take(self._decoder.received(size))
            except ProtocolError:
                self.close()
                raise
        return self._frames.popleft()

    def _take(self, frames: list[Frame]) -> None:
        for frame in frames:
            if frame.kind is not FrameKind.MESSAGE:
                # (feed() would also stop there, stalling the frames behind it.)
                raise ProtocolError("handshake frame after the handshake")
            self._frames.append(decode_message(frame))

    def interrupt(self, reason: str) -> None:
        """Wake a receive() blocked in another thread: it raises ClusterUnavailable(reason).

        For a node given up on while it does not answer (the driver's watchdog).
        The traffic is shut down here; the thread that uses the connection closes it.
        """
        with self._closing:
            if self.closed:
                return
            self._gone = reason
            with contextlib.suppress(OSError):  # already shut down, or never connected
                self._sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        with self._closing:
            if not self.closed:
                self.closed = True
                self._sock.close()
                self._decoder.clear()  # a half-received large frame's region goes now


def _closed_early(
    host: str, port: int, context: ssl.SSLContext | None, heard: bool
) -> AuthenticationError | ClusterUnavailable:
    """Why the node closed during the handshake, as far as it can be told."""
    address = f"{host}:{port}"
    if not heard and context is not None:
        return tls.refused_after_handshake(address)
    if not heard and tls.probe_blocking(host, port):
        return tls.speaks_tls(address)
    return ClusterUnavailable(f"{address} closed during the handshake")
