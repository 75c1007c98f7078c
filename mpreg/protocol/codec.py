"""The only module that pickles: message headers and user values.

Two kinds of pickles cross the wire, both only after the handshake:

* headers: typed messages flattened to tuples by their wire schema
  (:mod:`mpreg.protocol.schema`) and pickled with the stdlib pickler;
* values: user arguments and results, cloudpickled into a :class:`Blob`
  (a pickle stream plus protocol-5 out-of-band buffers, so a numpy array
  travels without being copied into the stream).

A Blob inside a message is not pickled into the header: its parts become
frame buffers, so a node forwards them untouched and never unpickles a
value it only routes.
"""

from __future__ import annotations

import dataclasses
import io
import operator
import pickle
import pickletools
from typing import Any, TypeVar

import cloudpickle

from mpreg.errors import ProtocolError, SerializationError
from mpreg.protocol.blob import Blob
from mpreg.protocol.frames import (
    MAX_VALUE_BYTES,
    VALUE_HEADROOM,
    Buffer,
    Frame,
    FrameKind,
    encode_frame,
)
from mpreg.protocol.schema import build_message_unchecked, flatten_message

_HEADER_PROTOCOL = 5


T = TypeVar("T")


def fast_pickle(cls: type[T]) -> type[T]:
    """Pickle a frozen dataclass as ``cls(*fields)``.

    The dataclass default for slotted classes calls ``dataclasses.fields()``
    on every pickle and ``__setstate__`` on every unpickle: a tenth of a
    node's time on small calls. Field order is the constructor's order.
    """
    names = tuple(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]
    if len(names) == 1:
        name = names[0]

        def reduce(self: object) -> tuple[type, tuple[Any, ...]]:
            return (cls, (getattr(self, name),))
    else:
        values = operator.attrgetter(*names) if names else (lambda _self: ())

        def reduce(self: object) -> tuple[type, tuple[Any, ...]]:
            return (cls, values(self))

    cls.__reduce__ = reduce  # type: ignore[method-assign]
    return cls


def encode_message(message: object, *, compress: bool = False) -> list[Buffer]:
    """Flatten ``message`` by its schema and pickle that; Blobs ride as frame buffers."""
    out: list[Buffer] = []
    header = pickle.dumps(flatten_message(message, out), _HEADER_PROTOCOL)
    return encode_frame(FrameKind.MESSAGE, header, out, compress=compress)


def decode_message(frame: Frame) -> object:
    """Rebuild a MESSAGE frame's message (authenticated peers only)."""
    try:
        return build_message_unchecked(pickle.loads(frame.header), frame.buffers)
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"undecodable message header: {exc!r}") from exc


class _NoGlobals(pickle.Unpickler):
    """Unpickles builtin data only: every class or function a pickle names is refused.

    Without a global nothing is called (no ``__reduce__``, no constructor), so
    the pickle can only make ints, strings, bytes, tuples, lists, dicts and sets.
    """

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} refused: this peer may send plain data only")


_MEMO_OPS = frozenset({"PUT", "BINPUT", "LONG_BINPUT", "GET", "BINGET", "LONG_BINGET"})
_MEMO_LIMIT = 4096  # a status request's header memoizes a handful of objects


def _small_memo(header: bytes) -> None:
    """Refuse a pickle that names a huge memo slot before the unpickler sees it.

    The C unpickler grows its memo to the largest index a PUT names: twelve
    bytes could make it allocate gigabytes, globals or not. ``genops`` only
    parses, so this costs a read-only peer's small header a few microseconds.
    """
    for opcode, arg, _ in pickletools.genops(header):
        if opcode.name in _MEMO_OPS and int(arg) > _MEMO_LIMIT:  # type: ignore[arg-type]
            raise ProtocolError(f"pickle memo index {arg} past {_MEMO_LIMIT}")


def decode_restricted(frame: Frame) -> object:
    """Rebuild a MESSAGE frame's message from a read-only peer, loading no pickle global.

    The header must be builtin data (the read-only messages' are); its Blobs
    stay bytes, never unpickled. Raises ProtocolError for anything else.
    """
    try:
        _small_memo(frame.header)
        flat = _NoGlobals(io.BytesIO(frame.header)).load()
        return build_message_unchecked(flat, frame.buffers)
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"refused message header from a read-only peer: {exc!r}") from exc


_SCALARS = frozenset({int, float, str, bytes, bool, type(None)})
_PLAIN_MAX_ITEMS = 16  # containers checked item by item up to this size


def _plain(value: Any, depth: int = 0) -> bool:
    """Small builtin scalars and containers of them: the stdlib pickler says the same.

    Loops, not generators: this runs on every small call's arguments and result.
    """
    kind = type(value)
    if kind in _SCALARS:
        return True
    if depth > 2:
        return False
    if kind is tuple or kind is list:
        if len(value) > _PLAIN_MAX_ITEMS:
            return False
        for item in value:
            if type(item) not in _SCALARS and not _plain(item, depth + 1):
                return False
        return True
    if kind is dict:
        if len(value) > _PLAIN_MAX_ITEMS:
            return False
        for key, item in value.items():
            if type(key) is not str or (type(item) not in _SCALARS and not _plain(item, depth + 1)):
                return False
        return True
    return False


def limit_frames(max_frame: int) -> None:
    """Values this process makes from now on must fit frames of ``max_frame`` bytes.

    A node sets its own ``max_frame_bytes``; drivers and workers the limit the
    node they connect to announces in the handshake (FramedHandshake), so a
    value the node would refuse is refused where it is made, by dumps_value.
    """
    global MAX_VALUE_BYTES
    MAX_VALUE_BYTES = max_frame - VALUE_HEADROOM


def max_value_bytes() -> int:
    """The largest pickled value (or call) this process may send in one frame now."""
    return MAX_VALUE_BYTES


def dumps_value(value: Any, *, what: str = "value") -> Blob:
    """Cloudpickle a user value into a Blob.

    Raises SerializationError if it cannot be pickled, or if it pickles to
    more than fits in a frame (``max_value_bytes()``): refused here, on the
    side that made it, rather than sent for the peer to reject by closing
    the link (which would look like a dead process and be retried).
    """
    if _plain(value):
        # Nothing here for cloudpickle to do differently, at a fifth of its
        # cost: most small calls' arguments and results.
        stream = pickle.dumps(value, 5)
        if len(stream) > MAX_VALUE_BYTES:
            raise _too_big(what, len(stream))
        return Blob([stream])
    buffers: list[pickle.PickleBuffer] = []
    try:
        stream = cloudpickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    except Exception as exc:
        raise SerializationError(f"cannot pickle {what}: {type(exc).__name__}: {exc}") from exc
    blob = Blob([stream, *(b.raw() for b in buffers)])
    if blob.nbytes > MAX_VALUE_BYTES:
        raise _too_big(what, blob.nbytes)
    return blob


def dumps_builtin(value: Any, *, what: str = "value") -> Blob:
    """:func:`dumps_value` of a value its caller checked holds builtin types only.

    No class to find by reference, so the stdlib pickler does cloudpickle's
    work, without :func:`_plain` walking the value again.
    """
    stream = pickle.dumps(value, 5)
    if len(stream) > MAX_VALUE_BYTES:
        raise _too_big(what, len(stream))
    return Blob([stream])


def _too_big(what: str, size: int) -> SerializationError:
    return SerializationError(
        f"{what} is {size:,} bytes pickled, over the frame limit of "
        f"{MAX_VALUE_BYTES:,} bytes ({MAX_VALUE_BYTES / 2**20:,.0f} MiB, the node's "
        "max_frame_bytes / --max-frame-mb): pass a smaller value, or split it"
    )


def loads_value(blob: Blob, *, what: str = "value") -> Any:
    """Unpickle a Blob made by :func:`dumps_value`."""
    try:
        return pickle.loads(blob.parts[0], buffers=blob.parts[1:])
    except Exception as exc:
        raise SerializationError(f"cannot unpickle {what}: {type(exc).__name__}: {exc}") from exc
