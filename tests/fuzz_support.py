"""Shared pieces of the property-based fuzz tests (hypothesis).

* :func:`fuzz` and :func:`ci_and_long`: every fuzz test runs a few hundred
  examples in the normal run (CI) and many more under ``-m fuzz_long``, which
  the default run leaves out (pyproject's addopts); both are
  derandomized (the same examples on every run, so CI is reproducible) and
  write no example database into the repository.
* :func:`bounded`: one example may take at most a few seconds; a decoder
  looping forever on a chunk fails the example instead of hanging the run.
* :func:`bounded_memory`: the same for memory, for code that unpickles.
* :func:`watch_unpickling`: the ``pickle.find_class`` audit event, which every
  pickle naming a class or function raises, seen from inside the process.
* strategies for frames: structured ones reach the decoder's deep paths
  (buffer tables, lz4, limits), not only its length check.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import resource
import signal
import struct
import sys
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, TypeVar

import lz4.frame
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from mpreg.protocol.frames import PROTOCOL_VERSION, FrameKind, encode_frame

F = TypeVar("F", bound=Callable[..., Any])

LONG_FACTOR = 16  # the slow run: 16x each test's examples (about 50,000 in all)
LONG_SECONDS = 900  # one long run's bound: a minute or two on an idle machine
EXAMPLE_SECONDS = 5.0  # generous on a shared 2-core machine: an example takes milliseconds


def ci_and_long(examples: int) -> list[Any]:
    """Parametrize a fuzz test: ``examples`` in the normal run, 16x under ``-m fuzz_long``."""
    return [
        pytest.param(examples, id="ci"),
        pytest.param(
            examples * LONG_FACTOR,
            id="long",
            marks=[pytest.mark.slow, pytest.mark.fuzz_long, pytest.mark.timeout(LONG_SECONDS)],
        ),
    ]


def fuzz(examples: int) -> Callable[[F], F]:
    """Hypothesis settings of every fuzz test: reproducible, no database, no flaky deadline.

    The per-example bound is :func:`bounded` (a real timer); hypothesis's own
    deadline would turn a slow moment of a busy machine into a failure.
    """
    return settings(
        max_examples=examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )


class Hung(Exception):
    """An example ran past :data:`EXAMPLE_SECONDS`: the code under test loops."""


@contextlib.contextmanager
def bounded(seconds: float = EXAMPLE_SECONDS) -> Iterator[None]:
    """Raise :class:`Hung` inside the block once it ran ``seconds`` (main thread only)."""

    def expire(_signum: int, _frame: FrameType | None) -> None:
        raise Hung(f"example still running after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def bounded_memory(extra: int = 256 * 2**20) -> Iterator[None]:
    """Let the process grow by at most ``extra`` bytes of address space inside the block.

    A pickle's memo index is an allocation size: a 12-byte header naming
    index 2**28 makes the unpickler allocate and zero 4 GiB. Under this bound
    that is a quick MemoryError rather than gigabytes of a shared machine.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    with open("/proc/self/statm") as f:
        size = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (size + extra, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


# --- unpickling, seen through the audit hook ------------------------------------


class UnpickleRefused(Exception):
    """A pickle named a global outside the allowed modules while being watched."""


class _Watch:
    active = False
    allow: tuple[str, ...] = ()
    seen: list[tuple[str, str]] = []  # replaced by each watch


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event == "pickle.find_class" and _Watch.active:
        module, name = str(args[0]), str(args[1])
        _Watch.seen.append((module, name))
        if not module.startswith(_Watch.allow):
            raise UnpickleRefused(f"a pickle named {module}.{name}")


sys.addaudithook(_audit)  # audit hooks cannot be removed: it stays idle outside a watch


@contextlib.contextmanager
def watch_unpickling(allow: tuple[str, ...] = ()) -> Iterator[list[tuple[str, str]]]:
    """Record every global a pickle names inside the block; refuse all but ``allow``.

    Refusing makes fuzzing random pickles safe (they cannot import or call
    anything outside ``allow``, e.g. ``os.system``); the list shows whether
    anything was unpickled at all (the handshake must unpickle nothing).
    """
    _Watch.active, _Watch.allow, _Watch.seen = True, allow, []
    try:
        yield _Watch.seen
    finally:
        _Watch.active = False


class Touch:
    """Unpickling this creates a file: proof that something unpickled it."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.path, "w"))


def touch_pickle(path: str) -> bytes:
    return pickle.dumps(Touch(path))


# --- byte strategies --------------------------------------------------------------


def wire(
    kind: int, header: bytes, buffers: tuple[bytes, ...] = (), compress: bool = False
) -> bytes:
    return b"".join(
        bytes(p) for p in encode_frame(FrameKind(kind), header, buffers, compress=compress)
    )


def raw_frame(
    kind: int, header: bytes, entries: list[tuple[bytes, int]], version: int = 1
) -> bytes:
    """A frame built by hand, as a peer may forge it: buffers with any flags."""
    body = struct.pack("!I", len(header)) + header
    body += b"".join(struct.pack("!IB", len(data), flags) for data, flags in entries)
    body += b"".join(data for data, _ in entries)
    return struct.pack("!IBBH", len(body), version, kind, len(entries)) + body


kinds = st.sampled_from([FrameKind.HANDSHAKE.value, FrameKind.MESSAGE.value])
small_bytes = st.binary(max_size=64)


@st.composite
def valid_frames(draw: st.DrawFn) -> bytes:
    kind = draw(kinds)
    buffers = () if kind == FrameKind.HANDSHAKE else tuple(draw(st.lists(small_bytes, max_size=4)))
    return wire(kind, draw(st.binary(max_size=128)), buffers)


@st.composite
def prefixed_garbage(draw: st.DrawFn) -> bytes:
    """A plausible prefix (any length, kind, buffer count) and a random body."""
    body = draw(st.binary(max_size=256))
    length = draw(st.one_of(st.just(len(body)), st.integers(0, 2**32 - 1)))
    version = draw(st.one_of(st.just(PROTOCOL_VERSION), st.integers(0, 255)))
    kind = draw(st.one_of(kinds, st.integers(0, 255)))
    nbufs = draw(st.one_of(st.integers(0, 4), st.integers(0, 2**16 - 1)))
    return struct.pack("!IBBH", length, version, kind, nbufs) + body


@st.composite
def huge_declared(draw: st.DrawFn) -> bytes:
    """A prefix claiming far more than any limit, then a little of the body."""
    length = draw(st.integers(2**16, 2**32 - 1))
    return struct.pack("!IBBH", length, PROTOCOL_VERSION, draw(kinds), 0) + draw(small_bytes)


def _lz4(data: bytes, declared: bool) -> bytes:
    return bytes(lz4.frame.compress(data, store_size=declared))


@st.composite
def lz4_frames(draw: st.DrawFn) -> bytes:
    """Buffers flagged lz4: garbage, or real lz4 (perhaps a bomb) mutated, cut or extended."""
    entries: list[tuple[bytes, int]] = []
    for _ in range(draw(st.integers(1, 3))):
        choice = draw(st.integers(0, 5))
        if choice == 0:
            data = draw(small_bytes)
        elif choice == 1:  # zeros expand a hundredfold: may pass the frame's limit
            data = _lz4(bytes(draw(st.integers(0, 100_000))), draw(st.booleans()))
        else:
            data = _lz4(draw(small_bytes), draw(st.booleans()))
            at = draw(st.integers(0, len(data) - 1))
            if choice == 3:
                data = data[:at] + bytes([draw(st.integers(0, 255))]) + data[at + 1 :]
            elif choice == 4:
                data = data[:at]
            elif choice == 5:
                data += draw(st.binary(min_size=1, max_size=8))
        entries.append((data, draw(st.sampled_from([1, 1, 1, 0, 3, 128]))))
    # Mostly MESSAGE frames: a handshake frame with buffers is refused before any lz4.
    kind = draw(st.sampled_from([FrameKind.MESSAGE.value] * 4 + [FrameKind.HANDSHAKE.value]))
    return raw_frame(kind, draw(small_bytes), entries)


@st.composite
def mutated(draw: st.DrawFn, base: st.SearchStrategy[bytes]) -> bytes:
    """``base`` with a few bytes replaced, inserted or deleted."""
    data = bytearray(draw(base))
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        op = draw(st.sampled_from(["set", "insert", "delete"]))
        byte = draw(st.integers(0, 255))
        if op == "insert" or at == len(data):
            data[at:at] = bytes([byte])
        elif op == "set":
            data[at] = byte
        else:
            del data[at]
    return bytes(data)


one_frame = st.one_of(
    st.binary(max_size=512),
    valid_frames(),
    prefixed_garbage(),
    huge_declared(),
    lz4_frames(),
    mutated(valid_frames()),
    mutated(lz4_frames()),
)
# Several frames back to back: a bad one may follow good ones, a handshake a message.
streams = st.lists(one_frame, min_size=1, max_size=4).map(b"".join)


# Where to cut a byte string, and as what type to pass each piece: drawn apart
# from the bytes (one strategy for all examples, which hypothesis builds once).
chunkings = st.lists(st.tuples(st.integers(0, 2**20), st.integers(0, 2)), max_size=8)


def cut(data: bytes, chunking: list[tuple[int, int]]) -> list[bytes | bytearray | memoryview]:
    """``data`` cut at the ``chunking``'s places, each piece as bytes, bytearray or memoryview."""
    cuts = sorted(at % (len(data) + 1) for at, _ in chunking)
    pieces = [data[a:b] for a, b in zip([0, *cuts], [*cuts, len(data)], strict=True)]
    kinds_of = [bytes, bytearray, memoryview]
    return [
        kinds_of[kind](piece) for piece, (_, kind) in zip(pieces, [*chunking, (0, 0)], strict=True)
    ]
