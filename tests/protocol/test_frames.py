"""Frames: sans-IO encoder/decoder, malformed input is a ProtocolError."""

from __future__ import annotations

import struct
import tracemalloc

import lz4.frame
import pytest

from mpreg.errors import ProtocolError
from mpreg.protocol.frames import (
    COMPRESS_MIN_BYTES,
    DEFAULT_MAX_FRAME,
    HANDSHAKE_MAX_FRAME,
    PROTOCOL_VERSION,
    FrameDecoder,
    FrameKind,
    encode_frame,
)


def _wire(kind: FrameKind, header: bytes, buffers: list[bytes] = (), **kw: bool) -> bytes:  # type: ignore[assignment]
    return b"".join(bytes(p) for p in encode_frame(kind, header, buffers, **kw))


def test_frame_round_trips_header_and_buffers_fed_one_byte_at_a_time() -> None:
    data = _wire(FrameKind.MESSAGE, b"head", [b"one", b"", b"three"])
    decoder = FrameDecoder()
    frames = [f for i in range(len(data)) for f in decoder.feed(data[i : i + 1])]
    assert len(frames) == 1
    assert frames[0].kind is FrameKind.MESSAGE
    assert frames[0].header == b"head"
    assert [bytes(b) for b in frames[0].buffers] == [b"one", b"", b"three"]


def test_many_frames_in_one_chunk_all_come_out_in_order() -> None:
    data = b"".join(_wire(FrameKind.MESSAGE, str(i).encode()) for i in range(50))
    assert [f.header for f in FrameDecoder().feed(data)] == [str(i).encode() for i in range(50)]


def test_compressible_large_buffer_is_compressed_and_restored() -> None:
    payload = b"abc" * COMPRESS_MIN_BYTES
    data = _wire(FrameKind.MESSAGE, b"h", [payload], compress=True)
    assert len(data) < len(payload) / 10
    (frame,) = FrameDecoder().feed(data)
    assert bytes(frame.buffers[0]) == payload


def test_incompressible_buffer_is_sent_raw_even_when_compression_is_on() -> None:
    import os

    payload = os.urandom(COMPRESS_MIN_BYTES)
    data = _wire(FrameKind.MESSAGE, b"h", [payload], compress=True)
    assert len(data) > len(payload)
    (frame,) = FrameDecoder().feed(data)
    assert bytes(frame.buffers[0]) == payload


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (struct.pack("!IBBH", 10, PROTOCOL_VERSION + 1, 1, 0), "protocol version"),
        (struct.pack("!IBBH", 10, PROTOCOL_VERSION, 77, 0), "unknown frame kind"),
        (struct.pack("!IBBH", 2**30, PROTOCOL_VERSION, 1, 0), "exceeds"),
        (struct.pack("!IBBH", 2, PROTOCOL_VERSION, 1, 0) + b"xx", "too short"),
        (
            struct.pack("!IBBH", 8, PROTOCOL_VERSION, 1, 0) + struct.pack("!I", 99) + b"xxxx",
            "overruns",
        ),
        (
            struct.pack("!IBBH", 9, PROTOCOL_VERSION, 2, 1)
            + struct.pack("!I", 0)
            + struct.pack("!IB", 5, 0),
            "overruns",
        ),
        (
            struct.pack("!IBBH", 10, PROTOCOL_VERSION, 2, 1)
            + struct.pack("!I", 0)
            + struct.pack("!IB", 1, 8)
            + b"x",
            "flags",
        ),
    ],
    ids=["version", "kind", "oversized", "short", "header-overrun", "buffer-overrun", "flags"],
)
def test_malformed_frames_raise_protocol_error(raw: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        FrameDecoder(max_frame=2**20).feed(raw)


def test_truncated_frame_waits_for_more_bytes() -> None:
    data = _wire(FrameKind.HANDSHAKE, b"{}")
    decoder = FrameDecoder()
    assert decoder.feed(data[:-1]) == []
    assert [f.header for f in decoder.feed(data[-1:])] == [b"{}"]


def _lz4_frame(kind: FrameKind, header: bytes, packed: bytes) -> bytes:
    """A frame whose one buffer is ``packed``, flagged lz4, as a peer may forge it."""
    body = struct.pack("!I", len(header)) + header + struct.pack("!IB", len(packed), 1) + packed
    return struct.pack("!IBBH", len(body), PROTOCOL_VERSION, kind, 1) + body


def test_oversized_prefix_is_refused_before_its_body_is_buffered() -> None:
    decoder = FrameDecoder(max_frame=HANDSHAKE_MAX_FRAME)
    with pytest.raises(ProtocolError, match="exceeds the 65536-byte limit"):
        decoder.feed(struct.pack("!IBBH", 100 * 2**20, PROTOCOL_VERSION, FrameKind.HANDSHAKE, 0))


def test_handshake_frame_with_buffers_is_a_protocol_error() -> None:
    with pytest.raises(ProtocolError, match="handshake frame carries 1 buffers"):
        FrameDecoder().feed(_wire(FrameKind.HANDSHAKE, b"{}", [b"payload"]))


def test_raised_limit_applies_to_the_frames_behind_a_handshake_frame() -> None:
    big = _wire(FrameKind.MESSAGE, b"h", [bytes(4 * HANDSHAKE_MAX_FRAME)])
    decoder = FrameDecoder(max_frame=HANDSHAKE_MAX_FRAME)
    (welcome,) = decoder.feed(_wire(FrameKind.HANDSHAKE, b"{}") + big)
    assert welcome.kind is FrameKind.HANDSHAKE
    decoder.max_frame = DEFAULT_MAX_FRAME  # what the connection does once authenticated
    (message,) = decoder.feed(b"")
    assert len(message.buffers[0]) == 4 * HANDSHAKE_MAX_FRAME


@pytest.mark.parametrize("store_size", [True, False], ids=["declared-size", "no-size"])
def test_lz4_bomb_is_refused_without_expanding_it(store_size: bool) -> None:
    packed = lz4.frame.compress(bytes(64 * 2**20), store_size=store_size)  # ~250 KiB
    data = _lz4_frame(FrameKind.MESSAGE, b"h", packed)
    decoder = FrameDecoder(max_frame=2**20)
    tracemalloc.start()
    try:
        with pytest.raises(ProtocolError, match="lz4 buffer"):
            decoder.feed(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * 2**20


def test_lz4_buffer_may_expand_up_to_the_limit_exactly() -> None:
    payload = b"abc" * COMPRESS_MIN_BYTES
    data = _wire(FrameKind.MESSAGE, b"h", [payload], compress=True)
    body_len = len(data) - 8
    packed_len = body_len - (4 + 1 + 5)
    exact = body_len - packed_len + len(payload)
    (frame,) = FrameDecoder(max_frame=exact).feed(data)
    assert bytes(frame.buffers[0]) == payload
    with pytest.raises(ProtocolError, match="lz4 buffer"):
        FrameDecoder(max_frame=exact - 1).feed(data)


@pytest.mark.parametrize(
    ("packed", "message"),
    [
        (b"not lz4 at all", "corrupt"),
        (lz4.frame.compress(b"abc" * 1000)[:-6], "truncated"),
        (lz4.frame.compress(b"abc" * 1000) + b"tail", "trailing"),
    ],
    ids=["corrupt", "truncated", "trailing"],
)
def test_malformed_lz4_buffer_is_a_protocol_error(packed: bytes, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        FrameDecoder().feed(_lz4_frame(FrameKind.MESSAGE, b"h", packed))
