"""Frames: sans-IO encoder/decoder, malformed input is a ProtocolError."""

from __future__ import annotations

import struct

import pytest

from mpreg.errors import ProtocolError
from mpreg.protocol.frames import (
    COMPRESS_MIN_BYTES,
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
