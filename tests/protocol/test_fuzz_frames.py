"""Fuzzing the frame decoder: any bytes, in any chunking, are frames or a ProtocolError.

Run long with ``uv run pytest -m slow tests/protocol/test_fuzz_frames.py``.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import pytest
from fuzz_support import (
    bounded,
    chunkings,
    ci_and_long,
    cut,
    fuzz,
    huge_declared,
    kinds,
    streams,
)
from hypothesis import given
from hypothesis import strategies as st

from mpreg.errors import ProtocolError
from mpreg.protocol.frames import (
    COMPRESS_MIN_BYTES,
    DEFAULT_MAX_FRAME,
    HANDSHAKE_MAX_FRAME,
    Buffer,
    Frame,
    FrameDecoder,
    FrameKind,
    encode_frame,
)

Seen = tuple[FrameKind, bytes, tuple[bytes, ...]]
limits = st.one_of(st.sampled_from([HANDSHAKE_MAX_FRAME, DEFAULT_MAX_FRAME]), st.integers(0, 4096))


def _seen(frame: Frame) -> Seen:
    return frame.kind, frame.header, tuple(bytes(b) for b in frame.buffers)


def _feed(decoder: FrameDecoder, chunks: Sequence[Buffer]) -> tuple[list[Seen], bool]:
    """Every frame ``chunks`` make (draining past handshake frames); and whether it raised."""
    frames: list[Seen] = []
    try:
        for chunk in chunks:
            got = decoder.feed(chunk)
            while got:  # feed stops after a handshake frame; b"" parses what follows
                frames.extend(_seen(f) for f in got)
                got = decoder.feed(b"")
    except ProtocolError:
        return frames, True
    return frames, False


@pytest.mark.parametrize("examples", ci_and_long(800))
def test_any_bytes_in_any_chunking_are_frames_or_a_protocol_error(examples: int) -> None:
    @fuzz(examples)
    @given(streams, chunkings, limits)
    def check(data: bytes, chunking: list[tuple[int, int]], max_frame: int) -> None:
        chunks = cut(data, chunking)
        with bounded():
            whole, whole_failed = _feed(FrameDecoder(max_frame), [data])
            pieces, pieces_failed = _feed(FrameDecoder(max_frame), chunks)
        # The chunking changes nothing: the same frames, and the same verdict.
        assert whole_failed == pieces_failed
        assert whole == pieces if not whole_failed else pieces[: len(whole)] == whole
        for kind, header, buffers in pieces:
            assert kind in FrameKind
            # lz4 buffers expand no frame past the limit (nor does anything else).
            assert len(header) + sum(len(b) for b in buffers) <= max_frame

    check()


@pytest.mark.parametrize("examples", ci_and_long(100))
def test_a_frame_over_the_limit_is_refused_from_its_prefix_alone(examples: int) -> None:
    @fuzz(examples)
    @given(huge_declared(), st.sampled_from([HANDSHAKE_MAX_FRAME, 1024, 0]))
    def check(data: bytes, max_frame: int) -> None:
        (declared,) = struct.unpack_from("!I", data)
        if declared <= max_frame:
            return
        with bounded(), pytest.raises(ProtocolError, match="exceeds"):
            FrameDecoder(max_frame).feed(data[:8])  # the body never needs to arrive

    check()


_PATTERN_MAX = 64


@st.composite
def _buffers(draw: st.DrawFn) -> list[bytes]:
    """Small buffers, and now and then one large and compressible enough for lz4."""
    buffers = draw(st.lists(st.binary(max_size=300), max_size=4))
    if draw(st.integers(0, 9)) == 0:
        pattern = draw(st.binary(min_size=1, max_size=_PATTERN_MAX))
        extra = draw(st.integers(0, 1000))
        big = (pattern * (COMPRESS_MIN_BYTES // len(pattern) + 1))[: COMPRESS_MIN_BYTES + extra]
        buffers.insert(draw(st.integers(0, len(buffers))), big)
    return buffers


_frame_specs = st.lists(
    st.tuples(kinds, st.binary(max_size=300), _buffers(), st.booleans()), min_size=1, max_size=3
)


@pytest.mark.parametrize("examples", ci_and_long(200))
def test_encoded_frames_decode_to_the_same_bytes_in_any_chunking(examples: int) -> None:
    @fuzz(examples)
    @given(_frame_specs, chunkings)
    def check(
        specs: list[tuple[int, bytes, list[bytes], bool]], chunking: list[tuple[int, int]]
    ) -> None:
        expected: list[Seen] = []
        wire = bytearray()
        for kind, header, buffers, compress in specs:
            sent = buffers if kind == FrameKind.MESSAGE else []  # handshakes carry none
            for piece in encode_frame(FrameKind(kind), header, sent, compress=compress):
                wire += piece
            expected.append((FrameKind(kind), header, tuple(sent)))
        with bounded():
            frames, failed = _feed(FrameDecoder(), cut(bytes(wire), chunking))
        assert not failed
        assert frames == expected

    check()


def test_the_handshake_limit_holds_until_it_is_raised() -> None:
    """The connection's decoder starts at the pre-authentication limit, then raises it."""
    big = b"".join(
        bytes(p) for p in encode_frame(FrameKind.MESSAGE, b"h", [bytes(HANDSHAKE_MAX_FRAME)])
    )
    decoder = FrameDecoder(HANDSHAKE_MAX_FRAME)
    with pytest.raises(ProtocolError, match="exceeds"):
        decoder.feed(big[:8])
    decoder = FrameDecoder(HANDSHAKE_MAX_FRAME)
    hello = b"".join(bytes(p) for p in encode_frame(FrameKind.HANDSHAKE, b"{}"))
    assert [f.header for f in decoder.feed(hello + big)] == [b"{}"]
    decoder.max_frame = DEFAULT_MAX_FRAME  # the peer authenticated
    assert [len(f.buffers[0]) for f in decoder.feed(b"")] == [HANDSHAKE_MAX_FRAME]
