"""Large frames: received into their own region, without copies, memory claimed as bytes arrive."""

from __future__ import annotations

import ctypes
import struct

import pytest

from mpreg.errors import ProtocolError
from mpreg.protocol import landing
from mpreg.protocol.frames import (
    LARGE_FRAME,
    PROTOCOL_VERSION,
    Frame,
    FrameDecoder,
    FrameKind,
    encode_frame,
)

MiB = 1 << 20


def _wire(header: bytes, buffers: list[bytes]) -> bytes:
    return b"".join(bytes(p) for p in encode_frame(FrameKind.MESSAGE, header, buffers))


def test_a_large_frame_fed_in_chunks_comes_out_whole_between_small_ones() -> None:
    big = bytes(range(256)) * (2 * LARGE_FRAME // 256)
    data = _wire(b"a", [b"x"]) + _wire(b"big", [b"head", big]) + _wire(b"c", [])
    decoder = FrameDecoder()
    frames = [f for i in range(0, len(data), 65536) for f in decoder.feed(data[i : i + 65536])]
    assert [f.header for f in frames] == [b"a", b"big", b"c"]
    assert [bytes(b) for b in frames[1].buffers] == [b"head", big]
    assert decoder.pending == 0


def test_a_transport_reads_the_rest_of_a_large_frame_straight_into_its_region() -> None:
    big = b"\7" * (3 * LARGE_FRAME)
    data = _wire(b"big", [big]) + _wire(b"next", [])
    decoder = FrameDecoder()
    assert decoder.feed(data[:1000]) == []
    target = decoder.recv_target()
    assert target is not None and len(target) == len(big) + len(_wire(b"big", [])) + 5 - 1000
    frames = []
    pos = 1000
    while (target := decoder.recv_target()) is not None:
        n = min(len(target), 100_000)  # as a socket gives it: in pieces
        target[:n] = data[pos : pos + n]
        pos += n
        frames += decoder.received(n)
    frames += decoder.feed(data[pos:])
    assert [f.header for f in frames] == [b"big", b"next"]
    (buffer,) = frames[0].buffers
    assert buffer == big
    buffer[0] = 1  # the frame's own memory: writable, as a received numpy array must be


def test_an_announced_length_holds_only_what_arrived_and_clear_unmaps_it() -> None:
    decoder = FrameDecoder()
    prefix = struct.pack("!IBBH", 100 * MiB, PROTOCOL_VERSION, FrameKind.MESSAGE, 1)
    decoder.feed(prefix + b"\0" * MiB)
    assert decoder.pending == MiB
    pooled = landing.pool.nbytes
    decoder.clear()
    assert decoder.pending == 0 and decoder.recv_target() is None
    assert landing.pool.nbytes <= pooled - 100 * MiB  # unmapped, not kept for reuse


def _chunked(decoder: FrameDecoder, data: bytes) -> list[Frame]:
    """Feed ``data`` as a socket delivers it, in 256 KiB reads."""
    step = 256 * 1024
    return [f for i in range(0, len(data), step) for f in decoder.feed(data[i : i + step])]


def _address(view: memoryview) -> int:
    return ctypes.addressof(ctypes.c_char.from_buffer(view))


def test_a_regions_memory_is_reused_once_nothing_views_it() -> None:
    frame = _wire(b"big", [b"\1" * (2 * LARGE_FRAME)])
    decoder = FrameDecoder()
    (first,) = _chunked(decoder, frame)
    (second,) = _chunked(decoder, frame)  # the first frame still holds its region
    assert _address(first.buffers[0]) != _address(second.buffers[0])
    assert bytes(first.buffers[0]) == bytes(second.buffers[0])
    del first, second
    # Each frame dropped at once: one region serves them all.
    addresses = set()
    for _ in range(3):
        (frame_now,) = _chunked(decoder, frame)
        addresses.add(_address(frame_now.buffers[0]))
        del frame_now
    assert len(addresses) == 1


def test_bytes_received_into_no_large_frame_are_a_protocol_error() -> None:
    with pytest.raises(ProtocolError):
        FrameDecoder().received(10)
