"""Length-prefixed frames, sans-IO: bytes in, frames out, and back.

A frame is an 8-byte prefix and a body::

    prefix  !IBBH  body length, protocol version, kind, number of buffers
    body    !I header length | header | nbufs x (!IB length, flags) | buffers

The header is small (JSON during the handshake, a pickled message after it);
buffers carry opaque payloads, so a node forwards them without reading them.
A buffer may be lz4-compressed (flag bit 0): only on links that cross hosts,
above a size threshold, and only when it shrinks (PERF_NOTES: lz4 never pays
on loopback).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import lz4.frame

from mpreg.errors import ProtocolError

PROTOCOL_VERSION = 1
DEFAULT_MAX_FRAME = 512 * 1024 * 1024
COMPRESS_MIN_BYTES = 256 * 1024

_PREFIX = struct.Struct("!IBBH")
_HEADER_LEN = struct.Struct("!I")
_BUF_ENTRY = struct.Struct("!IB")
_FLAG_LZ4 = 1

Buffer = bytes | bytearray | memoryview


class FrameKind(IntEnum):
    HANDSHAKE = 1
    MESSAGE = 2


@dataclass(frozen=True, slots=True)
class Frame:
    kind: FrameKind
    header: bytes
    buffers: tuple[memoryview, ...]


def encode_frame(
    kind: FrameKind,
    header: bytes,
    buffers: Sequence[Buffer] = (),
    *,
    compress: bool = False,
) -> list[Buffer]:
    """Return the pieces of one frame, ready for ``transport.writelines``.

    Large buffers are not copied; with ``compress`` each buffer of at least
    ``COMPRESS_MIN_BYTES`` is sent lz4-compressed if that makes it smaller.
    """
    table = bytearray()
    parts: list[Buffer] = []
    body_len = _HEADER_LEN.size + len(header)
    for buf in buffers:
        size = memoryview(buf).nbytes
        flags = 0
        if compress and size >= COMPRESS_MIN_BYTES:
            packed = lz4.frame.compress(buf)
            if len(packed) < size * 0.9:
                buf, size, flags = packed, len(packed), _FLAG_LZ4
        table += _BUF_ENTRY.pack(size, flags)
        parts.append(buf)
        body_len += _BUF_ENTRY.size + size
    head = _PREFIX.pack(body_len, PROTOCOL_VERSION, kind, len(buffers))
    return [head + _HEADER_LEN.pack(len(header)) + header + table, *parts]


class FrameDecoder:
    """Turns a byte stream into frames; raises ProtocolError on malformed input.

    After a ProtocolError the stream is out of sync and the connection must
    be closed.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._need = _PREFIX.size  # bytes needed before the next parse step
        self._prefix: tuple[int, int, int, int] | None = None

    def feed(self, data: Buffer) -> list[Frame]:
        self._buf += data
        frames: list[Frame] = []
        pos = 0
        buf = self._buf
        while True:
            if self._prefix is None:
                if len(buf) - pos < _PREFIX.size:
                    break
                prefix = _PREFIX.unpack_from(buf, pos)
                self._check_prefix(*prefix)
                self._prefix = prefix
                pos += _PREFIX.size
            body_len = self._prefix[0]
            if len(buf) - pos < body_len:
                break
            # One copy per frame: the frame owns its body, so buffers handed
            # to unpickling stay valid while this decoder reuses its buffer.
            body = bytearray(memoryview(buf)[pos : pos + body_len])
            pos += body_len
            _, _, kind, nbufs = self._prefix
            self._prefix = None
            frames.append(_parse_body(FrameKind(kind), body, nbufs))
        if pos:
            del buf[:pos]
        return frames

    def _check_prefix(self, body_len: int, version: int, kind: int, nbufs: int) -> None:
        if version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"unsupported protocol version {version} (this side speaks {PROTOCOL_VERSION})"
            )
        if kind not in (FrameKind.HANDSHAKE, FrameKind.MESSAGE):
            raise ProtocolError(f"unknown frame kind {kind}")
        if body_len > self.max_frame:
            raise ProtocolError(
                f"frame of {body_len} bytes exceeds the {self.max_frame}-byte limit"
            )
        if body_len < _HEADER_LEN.size + nbufs * _BUF_ENTRY.size:
            raise ProtocolError(f"frame body of {body_len} bytes is too short")


def _parse_body(kind: FrameKind, body: bytearray, nbufs: int) -> Frame:
    view = memoryview(body)
    (header_len,) = _HEADER_LEN.unpack_from(body, 0)
    pos = _HEADER_LEN.size + header_len
    table_end = pos + nbufs * _BUF_ENTRY.size
    if table_end > len(body):
        raise ProtocolError("frame header overruns its body")
    header = bytes(view[_HEADER_LEN.size : pos])
    entries = [_BUF_ENTRY.unpack_from(body, pos + i * _BUF_ENTRY.size) for i in range(nbufs)]
    pos = table_end
    buffers: list[memoryview] = []
    for size, flags in entries:
        if pos + size > len(body):
            raise ProtocolError("frame buffer overruns its body")
        chunk = view[pos : pos + size]
        pos += size
        if flags & _FLAG_LZ4:
            try:
                chunk = memoryview(bytearray(lz4.frame.decompress(chunk)))
            except RuntimeError as exc:
                raise ProtocolError(f"corrupt lz4 buffer: {exc}") from exc
        elif flags:
            raise ProtocolError(f"unknown buffer flags {flags}")
        buffers.append(chunk)
    if pos != len(body):
        raise ProtocolError("frame body has trailing bytes")
    return Frame(kind, header, tuple(buffers))
