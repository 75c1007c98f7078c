"""Codec: values as Blobs (out-of-band buffers), headers that never carry payload bytes."""

from __future__ import annotations

import threading

import pytest

from mpreg.errors import ProtocolError, SerializationError
from mpreg.protocol import codec
from mpreg.protocol.codec import Blob, decode_message, dumps_value, encode_message, loads_value
from mpreg.protocol.frames import FrameDecoder
from mpreg.protocol.messages import Call, SubmitBatch, TaskSpec


def _roundtrip(message: object) -> object:
    data = b"".join(bytes(p) for p in encode_message(message))
    (frame,) = FrameDecoder().feed(data)
    return decode_message(frame)


def test_blob_payloads_ride_as_frame_buffers_not_in_the_header() -> None:
    big = dumps_value(b"x" * 100_000)
    parts = encode_message(Call(1, "echo", big, ((7, dumps_value("dep")),), "c"))
    assert len(parts[0]) < 1_000  # prefix + header: no payload inside
    assert sum(len(memoryview(p)) for p in parts[1:]) > 100_000


def test_nested_blobs_survive_a_round_trip() -> None:
    spec = TaskSpec(1, "a", "echo", frozenset({"d"}), dumps_value(([1], {})), (), True)
    batch = _roundtrip(SubmitBatch(1, (spec, spec)))
    assert isinstance(batch, SubmitBatch)
    assert [loads_value(t.args) for t in batch.tasks] == [([1], {}), ([1], {})]


def test_values_cloudpickle_lambdas_and_refuse_locks_with_a_clear_error() -> None:
    assert loads_value(dumps_value(lambda x: x + 1))(1) == 2
    with pytest.raises(SerializationError, match="cannot pickle"):
        dumps_value(threading.Lock(), what="the result")


def test_corrupt_blob_is_a_serialization_error() -> None:
    with pytest.raises(SerializationError):
        loads_value(Blob([b"not a pickle"]))


def test_header_naming_missing_buffers_is_a_protocol_error() -> None:
    parts = encode_message(Call(1, "echo", dumps_value(1)))
    data = b"".join(bytes(p) for p in parts)
    (frame,) = FrameDecoder().feed(data)
    from mpreg.protocol.frames import Frame

    with pytest.raises(ProtocolError):
        decode_message(Frame(frame.kind, frame.header, ()))


def test_plain_values_and_everything_else_round_trip_alike() -> None:
    import collections
    import fractions

    class Local:  # only cloudpickle can ship this (defined in a function)
        def __init__(self) -> None:
            self.x = 1

    values = [
        ((1, "a", None), {"k": 2.5}),
        [b"bytes", True, [1, [2, [3, [4]]]]],  # deeper than the fast path looks
        list(range(100)),  # longer than the fast path looks
        collections.OrderedDict(a=1),  # a dict subclass: not plain
        fractions.Fraction(1, 3),
    ]
    for value in values:
        assert loads_value(dumps_value(value)) == value
    assert loads_value(dumps_value(Local())).x == 1


def test_a_value_too_big_for_a_frame_is_refused_naming_its_size_and_the_limit(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(codec, "MAX_VALUE_BYTES", 1000)
    for value in (b"x" * 2000, bytearray(2000), [b"x" * 2000] * 20):
        with pytest.raises(SerializationError, match=r"over the frame limit of 1,000 bytes"):
            codec.dumps_value(value, what="the result of 'f'")
    assert codec.loads_value(codec.dumps_value(b"x" * 500)) == b"x" * 500
