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
INLINE_MAX_BYTES = 16 * 1024  # buffers up to this size are copied into the frame's first piece

_PREFIX = struct.Struct("!IBBH")
_HEADER_LEN = struct.Struct("!I")
_PREFIX_AND_HEADER_LEN = struct.Struct("!IBBHI")
_BUF_ENTRY = struct.Struct("!IB")
_FLAG_LZ4 = 1

Buffer = bytes | bytearray | memoryview


class FrameKind(IntEnum):
    HANDSHAKE = 1
    MESSAGE = 2


_KINDS: dict[int, FrameKind] = {kind.value: kind for kind in FrameKind}


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

    Small buffers are joined into the first piece (fewer pieces to write);
    large ones are not copied. With ``compress`` each buffer of at least
    ``COMPRESS_MIN_BYTES`` is sent lz4-compressed if that makes it smaller.
    """
    if not buffers:
        body_len = _HEADER_LEN.size + len(header)
        return [
            _PREFIX_AND_HEADER_LEN.pack(body_len, PROTOCOL_VERSION, kind, 0, len(header)) + header
        ]
    table: list[bytes] = []
    inline: list[Buffer] = []
    large: list[Buffer] = []
    body_len = _HEADER_LEN.size + len(header)
    for buf in buffers:
        size = len(buf) if isinstance(buf, bytes) else memoryview(buf).nbytes
        flags = 0
        if compress and size >= COMPRESS_MIN_BYTES:
            packed = lz4.frame.compress(buf)
            if len(packed) < size * 0.9:
                buf, size, flags = packed, len(packed), _FLAG_LZ4
        table.append(_BUF_ENTRY.pack(size, flags))
        if large or size > INLINE_MAX_BYTES:
            large.append(buf)  # once one is large, keep order: the rest follow it
        else:
            inline.append(buf)
        body_len += _BUF_ENTRY.size + size
    head = _PREFIX_AND_HEADER_LEN.pack(body_len, PROTOCOL_VERSION, kind, len(buffers), len(header))
    return [b"".join([head, header, *table, *inline]), *large]


class FrameDecoder:
    """Turns a byte stream into frames; raises ProtocolError on malformed input.

    After a ProtocolError the stream is out of sync and the connection must
    be closed.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()

    def feed(self, data: Buffer) -> list[Frame]:
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        pos = 0
        end = len(buf)
        prefix_size = _PREFIX.size
        while end - pos >= prefix_size:
            body_len, version, kind, nbufs = _PREFIX.unpack_from(buf, pos)
            if (
                version != PROTOCOL_VERSION
                or kind not in _KINDS
                or body_len > self.max_frame
                or body_len < _HEADER_LEN.size + nbufs * _BUF_ENTRY.size
            ):
                self._reject(body_len, version, kind)
            start = pos + prefix_size
            stop = start + body_len
            if stop > end:
                break
            frames.append(_parse_body(_KINDS[kind], buf, start, stop, nbufs))
            pos = stop
        if pos:
            del buf[:pos]
        return frames

    def _reject(self, body_len: int, version: int, kind: int) -> None:
        if version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"unsupported protocol version {version} (this side speaks {PROTOCOL_VERSION})"
            )
        if kind not in _KINDS:
            raise ProtocolError(f"unknown frame kind {kind}")
        if body_len > self.max_frame:
            raise ProtocolError(
                f"frame of {body_len} bytes exceeds the {self.max_frame}-byte limit"
            )
        raise ProtocolError(f"frame body of {body_len} bytes is too short")


def _parse_body(kind: FrameKind, buf: bytearray, start: int, stop: int, nbufs: int) -> Frame:
    """One frame's header and buffers, copied out of the stream buffer.

    The buffers share one fresh bytearray: the frame owns them (they stay
    valid, and writable, after the decoder reuses its buffer) at one copy.
    """
    (header_len,) = _HEADER_LEN.unpack_from(buf, start)
    header_end = start + _HEADER_LEN.size + header_len
    table_end = header_end + nbufs * _BUF_ENTRY.size
    if table_end > stop:
        raise ProtocolError("frame header overruns its body")
    header = bytes(buf[start + _HEADER_LEN.size : header_end])
    if not nbufs:
        if header_end != stop:
            raise ProtocolError("frame body has trailing bytes")
        return Frame(kind, header, ())
    region = memoryview(buf[table_end:stop])
    buffers: list[memoryview] = []
    offset = 0
    for size, flags in _BUF_ENTRY.iter_unpack(buf[header_end:table_end]):
        if offset + size > len(region):
            raise ProtocolError("frame buffer overruns its body")
        chunk = region[offset : offset + size]
        offset += size
        if flags & _FLAG_LZ4:
            try:
                chunk = memoryview(bytearray(lz4.frame.decompress(chunk)))
            except RuntimeError as exc:
                raise ProtocolError(f"corrupt lz4 buffer: {exc}") from exc
        elif flags:
            raise ProtocolError(f"unknown buffer flags {flags}")
        buffers.append(chunk)
    if offset != len(region):
        raise ProtocolError("frame body has trailing bytes")
    return Frame(kind, header, tuple(buffers))
