"""Fuzzing the message builder: any header is a message or a ProtocolError; messages round-trip.

Headers are unpickled only from authenticated peers, and a pickle can name any
function: the fuzzed ones run under :func:`watch_unpickling`, which refuses
every global outside ``mpreg`` (so a random header cannot import or call
anything else), and :func:`bounded_memory`.
Run long with ``uv run pytest -m slow tests/protocol/test_fuzz_messages.py``.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import struct
import typing
from collections.abc import Sequence
from typing import Any

import pytest
from fuzz_support import bounded, bounded_memory, ci_and_long, fuzz, watch_unpickling
from hypothesis import example, given
from hypothesis import strategies as st

from mpreg.errors import ProtocolError
from mpreg.protocol import messages
from mpreg.protocol.blob import Blob
from mpreg.protocol.codec import decode_message, encode_message
from mpreg.protocol.frames import Frame, FrameDecoder, FrameKind
from mpreg.protocol.schema import Schema, build_message, flatten_message, schema_of

# Blobs always have a part (dumps_value makes one, a received one had one): the
# builder refuses a Blob that names no buffer, so none is generated.
blobs = st.lists(st.binary(max_size=64), min_size=1, max_size=3).map(Blob)
st.register_type_strategy(Blob, blobs)

# What a header's plain fields may hold (and an ``object`` field: Reply.value, Gossip.body).
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(max_size=16),
    st.binary(max_size=16),
)
plain = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(st.text(max_size=8), inner, max_size=4),
    ),
    max_leaves=12,
)


def _message_classes() -> list[type]:
    found = []
    for value in vars(messages).values():
        if isinstance(value, type) and dataclasses.is_dataclass(value):
            try:
                schema_of(value)
            except TypeError:
                continue  # a record carried inside messages (Endpoint, NodeStats), not one
            found.append(value)
    return found


CLASSES = _message_classes()
SCHEMAS: list[Schema] = [schema_of(cls) for cls in CLASSES]
IDS = [s.type_id for s in SCHEMAS]


def _builds(cls: type) -> st.SearchStrategy[Any]:
    """Any instance of ``cls``, driven by its annotations; ``object`` fields hold plain data."""
    hints = typing.get_type_hints(cls, vars(messages))
    overrides = {name: plain for name, hint in hints.items() if hint is object}
    return st.builds(cls, **overrides)


any_message = st.one_of([_builds(cls) for cls in CLASSES])


def _norm(value: Any) -> Any:
    """A value comparable with ``==`` after a round trip (Blobs by their bytes, NaN as a token)."""
    if isinstance(value, Blob):
        return ("Blob", tuple(bytes(p) for p in value.parts))
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = dataclasses.fields(value)
        return (type(value), tuple(_norm(getattr(value, f.name)) for f in fields))
    if isinstance(value, tuple | list):
        return (type(value), tuple(_norm(v) for v in value))
    if isinstance(value, float) and math.isnan(value):
        return ("nan",)
    return value


def _wire(message: object, compress: bool) -> bytes:
    return b"".join(bytes(p) for p in encode_message(message, compress=compress))


@pytest.mark.parametrize("examples", ci_and_long(300))
def test_every_message_type_round_trips_through_the_wire(examples: int) -> None:
    @fuzz(examples)
    @given(any_message, st.booleans())
    def check(message: object, compress: bool) -> None:
        with bounded():
            (frame,) = FrameDecoder().feed(_wire(message, compress))
            decoded = decode_message(frame)
        assert _norm(decoded) == _norm(message)

    check()


def test_the_round_trip_covers_every_registered_message() -> None:
    assert len(CLASSES) == len(set(IDS)) >= 25


def _decodes_or_refuses(header: bytes, buffers: Sequence[bytes]) -> None:
    frame = Frame(FrameKind.MESSAGE, header, tuple(memoryview(b) for b in buffers))
    with bounded(), bounded_memory(), watch_unpickling(allow=("mpreg.",)):
        try:
            decoded = decode_message(frame)
        except ProtocolError:
            return
    assert type(decoded) in CLASSES


buffer_lists = st.lists(st.binary(max_size=32), max_size=4)


@pytest.mark.parametrize("examples", ci_and_long(400))
def test_random_header_bytes_are_a_message_or_a_protocol_error(examples: int) -> None:
    @fuzz(examples)
    @given(st.binary(max_size=256), buffer_lists)
    # A memo index is an allocation: 4 GiB for these 12 bytes (refused under the bound).
    @example(b"\x80\x05Nr" + struct.pack("<I", 2**28) + b".", [])
    def check(header: bytes, buffers: list[bytes]) -> None:
        _decodes_or_refuses(header, buffers)

    check()


def _flat_of(message: object) -> tuple[tuple[Any, ...], list[Any]]:
    out: list[Any] = []
    return flatten_message(message, out), out


@st.composite
def mutated_headers(draw: st.DrawFn) -> tuple[Any, list[Any]]:
    """A real message's flat header, then fields swapped, replaced, dropped or added."""
    flat, buffers = _flat_of(draw(any_message))
    items = list(flat)
    for _ in range(draw(st.integers(1, 3))):
        op = draw(st.sampled_from(["swap", "replace", "drop", "add", "retype", "buffers"]))
        at = draw(st.integers(0, len(items) - 1)) if items else 0
        if op == "swap" and len(items) > 1:
            other = draw(st.integers(0, len(items) - 1))
            items[at], items[other] = items[other], items[at]
        elif op == "replace" and items:
            items[at] = draw(st.one_of(plain, st.tuples(st.integers(-3, 9), st.integers(-3, 9))))
        elif op == "drop" and items:
            del items[at]
        elif op == "add":
            items.insert(at, draw(plain))
        elif op == "retype" and items:
            items[0] = draw(st.sampled_from(IDS))
        elif op == "buffers":
            buffers = draw(buffer_lists)
    return tuple(items), buffers


random_tuples = st.tuples(st.one_of(st.sampled_from(IDS), plain), st.lists(plain, max_size=12))
random_flat = random_tuples.map(lambda t: (t[0], *t[1]))


@pytest.mark.parametrize("examples", ci_and_long(400))
def test_any_flat_header_builds_a_message_or_raises_protocol_error(examples: int) -> None:
    @fuzz(examples)
    @given(
        st.one_of(
            mutated_headers(), st.tuples(random_flat, buffer_lists), st.tuples(plain, buffer_lists)
        )
    )
    @example(((1,), []))  # too few fields: was a ValueError
    @example(((7, 1, 5, None), [b"x"]))  # a Blob reference that is no pair: was a TypeError
    def check(case: tuple[Any, list[Any]]) -> None:
        flat, buffers = case
        with bounded():
            try:
                built = build_message(flat, [memoryview(b) for b in buffers])
            except ProtocolError:
                built = None
        assert built is None or type(built) in CLASSES
        # The same header pickled, as a peer sends it, through the whole decoder.
        _decodes_or_refuses(pickle.dumps(flat, 5), buffers)

    check()
