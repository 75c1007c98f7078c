"""Wire schemas: which fields of a message are plain values, Blobs or nested messages.

A message class registers with ``@message(type_id)``. The codec then sends it
as a flat tuple ``(type_id, field, ...)`` whose Blobs are replaced by their
position among the frame's buffers and whose nested messages are flattened
the same way: no class reference and no Python ``__reduce__`` per message,
about half the cost of pickling the dataclass itself (docs/design.md: the node's
per-message work is its bottleneck). Field kinds come from the annotations,
resolved on first use because they name classes defined later. Pure: no I/O.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

from mpreg.errors import ProtocolError
from mpreg.protocol.blob import Blob

T = TypeVar("T")

# Field kinds, small ints: compared on the hot path.
VALUE = 0  # pickled as it is
BLOB = 1  # Blob | None: its parts become frame buffers
DEPS = 2  # tuple[tuple[int, Blob], ...]
MESSAGE = 3  # a nested registered message (or None)
MESSAGES = 4  # tuple[<registered message>, ...]


Flatten = Callable[[Any, list[Any]], tuple[Any, ...]]
Build = Callable[[tuple[Any, ...], Sequence[Any]], Any]


@dataclass(frozen=True, slots=True)
class Schema:
    """A message class's wire shape, with its generated flatten/build functions.

    ``flatten(message, out)`` returns the tuple to pickle and appends Blob
    parts to ``out``; ``build(flat, buffers)`` reverses it. They are
    generated per class (as dataclasses generates ``__init__``) because a
    generic per-field loop costs more than the rest of decoding.
    """

    cls: type
    type_id: int
    fields: tuple[tuple[str, int], ...]
    flatten: Flatten
    build: Build


_registered: dict[type, int] = {}
_by_class: dict[type, Schema] = {}
_by_id: dict[int, Schema] = {}


def message(type_id: int) -> Callable[[type[T]], type[T]]:
    """Register a frozen dataclass as a wire message with a stable ``type_id``."""

    def register(cls: type[T]) -> type[T]:
        if type_id in _registered.values():
            raise ValueError(f"wire type id {type_id} is taken")
        _registered[cls] = type_id
        return cls

    return register


def schema_of(cls: type) -> Schema:
    """The schema of a registered message class (resolved once)."""
    schema = _by_class.get(cls)
    if schema is None:
        if cls not in _registered:
            raise TypeError(f"{cls.__name__} is not a registered wire message")
        schema = _resolve(cls)
    return schema


def schema_for_id(type_id: object) -> Schema:
    """The schema for a received type id; ProtocolError for an unknown one."""
    schema = _by_id.get(type_id) if type(type_id) is int else None
    if schema is None:
        if len(_by_id) < len(_registered):  # a message module imported after first use
            for cls in list(_registered):
                _resolve(cls)
            return schema_for_id(type_id)
        raise ProtocolError(f"unknown message type {type_id!r}")
    return schema


def _resolve(cls: type) -> Schema:
    for other in list(_registered):  # resolve everything once: ids must all be known
        if other not in _by_class:
            fields = tuple((f.name, _kind(str(f.type))) for f in dataclasses.fields(other))
            type_id = _registered[other]
            schema = Schema(
                other, type_id, fields, _gen_flatten(type_id, fields), _gen_build(other, fields)
            )
            _by_class[other] = schema
            _by_id[type_id] = schema
    return _by_class[cls]


def _put(blob: Any, out: list[Any]) -> tuple[int, int]:
    start = len(out)
    out.extend(blob.parts)
    return (start, len(blob.parts))


def _take(buffers: Sequence[Any], start: int, count: int) -> Any:
    parts = buffers[start : start + count]
    if len(parts) != count or count < 1:
        raise ProtocolError("message refers to buffers its frame does not carry")
    return Blob(parts)


def _flatten_any(message: Any, out: list[Any]) -> tuple[Any, ...]:
    schema = _by_class.get(type(message)) or schema_of(type(message))
    return schema.flatten(message, out)


def _build_any(flat: tuple[Any, ...], buffers: Sequence[Any]) -> Any:
    if type(flat) is not tuple or not flat:
        raise ProtocolError("a message header must be a non-empty tuple")
    schema = _by_id.get(flat[0]) or schema_for_id(flat[0])
    return schema.build(flat, buffers)


def build_message(flat: Any, buffers: Sequence[Any]) -> Any:
    """The message a received header describes; ProtocolError for anything else.

    ``flat`` comes off the wire: a tuple of the wrong length or with a field
    of the wrong shape raises ProtocolError here, never the TypeError or
    ValueError of the generated code (found by fuzzing, tests/protocol).
    """
    try:
        return _build_any(flat, buffers)
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"malformed message header: {exc!r}") from exc


flatten_message = _flatten_any
# For the codec's decode_message, which turns every error into a ProtocolError
# itself: one Python call less per message on the node's hot path.
build_message_unchecked = _build_any

_HELPERS = {"_put": _put, "_take": _take, "_flatten_any": _flatten_any, "_build_any": _build_any}


def _gen_flatten(type_id: int, fields: tuple[tuple[str, int], ...]) -> Flatten:
    items = []
    for name, kind in fields:
        v = f"m.{name}"
        if kind == VALUE:
            items.append(v)
        elif kind == BLOB:
            items.append(f"(None if {v} is None else _put({v}, out))")
        elif kind == DEPS:
            items.append(f"(tuple([(t, *_put(b, out)) for t, b in {v}]) if {v} else ())")
        elif kind == MESSAGE:
            items.append(f"(None if {v} is None else _flatten_any({v}, out))")
        else:
            items.append(f"tuple([_flatten_any(x, out) for x in {v}])")
    body = ", ".join([str(type_id), *items])
    return _compile(f"def flatten(m, out):\n    return ({body},)\n", "flatten")


def _gen_build(cls: type, fields: tuple[tuple[str, int], ...]) -> Build:
    names = [f"f{i}" for i in range(len(fields))]
    args = []
    for v, (_, kind) in zip(names, fields, strict=True):
        if kind == VALUE:
            args.append(v)
        elif kind == BLOB:
            args.append(f"(None if {v} is None else _take(bufs, *{v}))")
        elif kind == DEPS:
            args.append(f"(tuple([(t, _take(bufs, s, c)) for t, s, c in {v}]) if {v} else ())")
        elif kind == MESSAGE:
            args.append(f"(None if {v} is None else _build_any({v}, bufs))")
        else:
            args.append(f"tuple([_build_any(x, bufs) for x in {v}])")
    unpack = ", ".join(["_", *names]) + ","
    source = f"def build(flat, bufs):\n    {unpack} = flat\n    return cls({', '.join(args)})\n"
    return _compile(source, "build", cls=cls)


def _compile(source: str, name: str, **extra: Any) -> Any:
    namespace: dict[str, Any] = {**_HELPERS, **extra}
    exec(compile(source, f"<mpreg wire {name}>", "exec"), namespace)
    return namespace[name]


_MESSAGES_RE = re.compile(r"tuple\[(\w+),\.\.\.\]")


def _kind(annotation: str) -> int:
    text = annotation.replace(" ", "")
    names = {c.__name__ for c in _registered}
    if text in ("Blob", "Blob|None"):
        return BLOB
    if text == "tuple[tuple[int,Blob],...]":
        return DEPS
    if text.removesuffix("|None") in names:
        return MESSAGE
    match = _MESSAGES_RE.fullmatch(text)
    if match and match.group(1) in names:
        return MESSAGES
    return VALUE
