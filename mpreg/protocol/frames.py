"""Length-prefixed frames, sans-IO: bytes in, frames out, and back.

A frame is an 8-byte prefix and a body::

    prefix  !IBBH  body length, protocol version, kind, number of buffers
    body    !I header length | header | nbufs x (!IB length, flags) | buffers

The header is small (JSON during the handshake, a pickled message after it);
buffers carry opaque payloads, so a node forwards them without reading them.
A buffer may be lz4-compressed (flag bit 0): only on links that cross hosts,
above a size threshold, and only when it shrinks (docs/design.md: lz4 never pays
on loopback).

Until the peer authenticated, nothing large is accepted: the connection's
decoder allows frames of at most ``HANDSHAKE_MAX_FRAME`` bytes, handshake
frames carry no buffers (so nothing is decompressed), and no frame expands
past the decoder's limit when its lz4 buffers are decompressed. After it,
frames are limited to the node's ``max_frame_bytes`` (``DEFAULT_MAX_FRAME``).

A frame of ``LARGE_FRAME`` bytes or more is received into a buffer of its own
(:mod:`mpreg.protocol.landing`): its pages are claimed as bytes arrive, never
for the length a peer merely announces, the transport may read straight into
it (``recv_target``/``received``), its buffers are views of it rather than
copies, and its memory goes back to the system when the frame is dropped.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

import lz4.frame

from mpreg.config import DEFAULT_MAX_FRAME_BYTES
from mpreg.errors import ProtocolError
from mpreg.protocol.landing import Landing

PROTOCOL_VERSION = 1
# Authenticated frames (128 MiB): a node's ``max_frame_bytes`` overrides it.
DEFAULT_MAX_FRAME = DEFAULT_MAX_FRAME_BYTES
# Room for the message header and buffer table around a value in a frame.
VALUE_HEADROOM = 64 * 1024
# The largest pickled value a frame carries: the frame limit less room for the
# message header and buffer table around it (the codec refuses larger ones).
MAX_VALUE_BYTES = DEFAULT_MAX_FRAME - VALUE_HEADROOM
LARGE_FRAME = 512 * 1024  # frames from this size land in a buffer of their own
HANDSHAKE_MAX_FRAME = 64 * 1024  # the limit before authentication; JSON handshakes are < 1 KiB
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
_MESSAGE = FrameKind.MESSAGE  # module globals: the hot loop reads no class attributes
_HANDSHAKE = FrameKind.HANDSHAKE


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

    ``max_frame`` bounds every frame twice: its body length, checked from the
    8-byte prefix before the body is buffered (so at most one ``feed`` chunk
    beyond the limit is ever held), and its size once lz4 buffers are
    decompressed. It may be changed between calls: a connection starts at
    ``HANDSHAKE_MAX_FRAME`` and raises it once the peer authenticated. So that
    the new limit applies to whatever follows the handshake, ``feed`` returns
    right after a HANDSHAKE frame; ``feed(b"")`` parses the bytes behind it.

    After a ProtocolError the stream is out of sync and the connection must
    be closed.
    """

    def __init__(self, max_frame: int = DEFAULT_MAX_FRAME) -> None:
        self.max_frame = max_frame
        self._buf = bytearray()
        self._landing: Landing | None = None  # the large frame being received, if any

    @property
    def pending(self) -> int:
        """Bytes held for a frame not complete yet (0: between frames)."""
        landing = self._landing
        return len(self._buf) + (landing.filled if landing is not None else 0)

    def clear(self) -> None:
        """Drop whatever is buffered (the connection closed): its memory goes back now."""
        self._buf = bytearray()
        if self._landing is not None:
            self._landing.discard()
            self._landing = None

    def recv_target(self) -> memoryview | None:
        """Where the next bytes of a large frame go, or None: then ``feed`` them.

        A transport that can read into a buffer (``recv_into``, a
        BufferedProtocol) reads straight into this and calls :meth:`received`:
        the frame's bytes are then copied once, by the kernel.
        """
        landing = self._landing
        return None if landing is None else landing.rest()

    def received(self, nbytes: int) -> list[Frame]:
        """``nbytes`` were written at the start of ``recv_target()``; the frames now complete."""
        landing = self._landing
        if landing is None or nbytes > len(landing) - landing.filled:
            raise ProtocolError("bytes received into no large frame")  # a transport bug
        landing.filled += nbytes
        return [self._land()] if landing.complete else []

    def feed(self, data: Buffer) -> list[Frame]:
        """Append ``data``; return the frames now complete (a HANDSHAKE frame comes last)."""
        frames: list[Frame] = []
        landing = self._landing
        if landing is not None:
            taken = landing.take(data)
            if not landing.complete:
                return frames
            frames.append(self._land())
            data = memoryview(data)[taken:]
        buf = self._buf
        buf += data
        pos = 0
        end = len(buf)
        prefix_size = _PREFIX.size
        max_frame = self.max_frame
        while end - pos >= prefix_size:
            body_len, version, kind, nbufs = _PREFIX.unpack_from(buf, pos)
            start = pos + prefix_size
            stop = start + body_len
            if (
                kind != _MESSAGE
                or version != PROTOCOL_VERSION
                or body_len > max_frame
                or body_len < _HEADER_LEN.size + nbufs * _BUF_ENTRY.size
            ):
                # Off the hot path: a handshake frame, or a bad prefix (raises).
                self._check_handshake_prefix(body_len, version, kind, nbufs)
                if stop <= end:
                    frames.append(_parse_body(_HANDSHAKE, buf, start, stop, 0, max_frame))
                    pos = stop
                break  # the caller may change max_frame before the next frame
            if stop > end:
                if body_len >= LARGE_FRAME:
                    # Into a buffer of its own from here: its bytes are not copied
                    # again, nor grown with the stream buffer.
                    self._landing = landing = Landing(body_len, kind, nbufs)
                    landing.take(memoryview(buf)[start:end])
                    pos = end
                break
            frames.append(_parse_body(_MESSAGE, buf, start, stop, nbufs, max_frame))
            pos = stop
        if pos:
            del buf[:pos]
        return frames

    def _land(self) -> Frame:
        """The large frame just completed; its buffers are views of its own region."""
        landing = self._landing
        assert landing is not None
        self._landing = None
        view = landing.view
        return _parse_body(
            FrameKind(landing.kind), view, 0, len(view), landing.nbufs, self.max_frame, copy=False
        )

    def _check_handshake_prefix(self, body_len: int, version: int, kind: int, nbufs: int) -> None:
        """Raise ProtocolError unless this is a valid HANDSHAKE frame's prefix.

        Called only for prefixes the MESSAGE fast path did not accept, so a
        prefix that passes every check here is a handshake frame's.
        """
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
        if body_len < _HEADER_LEN.size + nbufs * _BUF_ENTRY.size:
            raise ProtocolError(f"frame body of {body_len} bytes is too short")
        if nbufs:
            # Nothing to decompress, nor to buffer, before the peer authenticated.
            raise ProtocolError(f"handshake frame carries {nbufs} buffers; it may carry none")


def _parse_body(
    kind: FrameKind,
    buf: bytearray | memoryview,
    start: int,
    stop: int,
    nbufs: int,
    max_frame: int,
    *,
    copy: bool = True,
) -> Frame:
    """One frame's header and buffers.

    From the stream buffer (``copy``) the buffers share one fresh bytearray:
    the frame owns them (they stay valid, and writable, after the decoder
    reuses its buffer) at one copy. A large frame's own region is not copied.
    Decompressed buffers may grow the frame up to ``max_frame`` bytes.
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
    region = memoryview(buf[table_end:stop]) if copy else memoryview(buf)[table_end:stop]
    buffers: list[memoryview] = []
    offset = 0
    room = -1  # bytes decompression may still add; computed at the first lz4 buffer
    for size, flags in _BUF_ENTRY.iter_unpack(buf[header_end:table_end]):
        if offset + size > len(region):
            raise ProtocolError("frame buffer overruns its body")
        chunk = region[offset : offset + size]
        offset += size
        if flags & _FLAG_LZ4:
            if room < 0:
                room = max_frame - (stop - start)
            room += size  # the compressed bytes are replaced by their expansion
            chunk = _decompress(chunk, room)
            room -= len(chunk)
        elif flags:
            raise ProtocolError(f"unknown buffer flags {flags}")
        buffers.append(chunk)
    if offset != len(region):
        raise ProtocolError("frame body has trailing bytes")
    return Frame(kind, header, tuple(buffers))


def _decompress(chunk: memoryview, limit: int) -> memoryview:
    """One lz4 frame, expanded to at most ``limit`` bytes (never allocating more).

    A small lz4 frame can expand a thousandfold and ``lz4.frame.decompress``
    grows its output as far as the data goes, so the output is capped here:
    a buffer that declares, or turns out, to expand past ``limit`` is refused.
    """
    try:
        declared = lz4.frame.get_frame_info(chunk)["content_size"]
        if declared > limit:
            raise ProtocolError(
                f"lz4 buffer declares {declared} bytes, past the frame's {limit}-byte allowance"
            )
        cap = declared or limit
        decompressor = lz4.frame.LZ4FrameDecompressor(return_bytearray=True)
        out = decompressor.decompress(chunk, max_length=cap)
    except RuntimeError as exc:
        raise ProtocolError(f"corrupt lz4 buffer: {exc}") from exc
    if not decompressor.eof:
        if decompressor.needs_input:
            raise ProtocolError("truncated lz4 buffer")
        raise ProtocolError(f"lz4 buffer expands past {cap} bytes (its declared size or limit)")
    if decompressor.unused_data:
        raise ProtocolError("lz4 buffer has trailing bytes")
    return memoryview(out)


def parts_size(parts: list[Buffer]) -> int:
    """The bytes of encoded frame pieces (bytes, bytearrays and byte memoryviews)."""
    total = 0
    for part in parts:
        total += part.nbytes if isinstance(part, memoryview) else len(part)
    return total
