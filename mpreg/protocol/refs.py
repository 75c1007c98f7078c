"""Placeholders for results inside a task's arguments, and the walk that fills them.

The driver's planner puts a :class:`DepRef` wherever a command's arguments use
another command's result; the worker that runs the task swaps each one for the
value with :func:`resolve_refs`. Both sides walk values the same way
(:func:`rewrite`), so what the planner can place the worker can find.

A reference may name a field of a result (``"s1.rows.0.label"``). The field
is taken out by the worker that produced the result (:func:`extract`), which
then answers with a *bundle* (:func:`pack_bundle`): the whole result only if
someone needs it, and each asked field as its own small pickle. The node
splits a bundle (:func:`unpack_bundle`) by its plain manifest without
unpickling anything, and hands a consumer only the field it uses.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mpreg.protocol.blob import Blob
from mpreg.protocol.codec import fast_pickle

PathItem = str | int
Path = tuple[PathItem, ...]

# Values of these exact types can never be, or contain, a reference (nested
# strings are not references), so the walkers skip them without a call.
ATOMS: frozenset[type] = frozenset({str, bytes, bytearray, int, float, complex, bool, type(None)})


@fast_pickle  # pickled in every task that uses a result, unpickled where it runs
@dataclass(frozen=True, slots=True)
class DepRef:
    """Placeholder for the result of task ``task_id``, or for one field of it.

    Put in a task's arguments by the planner before pickling; the executing
    worker swaps it for the value with :func:`resolve_refs`. A whole result
    is found under its task id among the call's dependencies; a field
    (``path`` not empty) under ``key``, a negative number the planner gives
    each field a task uses (see :func:`field_key`), so it never meets a task id.
    """

    task_id: int
    path: Path = ()
    key: int = 0

    @property
    def slot(self) -> int:
        """Where the value is among the call's dependencies."""
        return self.key if self.path else self.task_id


def field_key(position: int) -> int:
    """The dependency key of the ``position``-th entry of a task's ``uses`` (a field)."""
    return -(position + 1)


def rewrite(value: Any, leaf: Callable[[Any], Any]) -> Any:
    """Apply ``leaf`` to every non-container value inside ``value``.

    Lists, tuples and dict values are walked at any depth and rebuilt with the
    same type only when something inside changed; otherwise the same object is
    returned. ``leaf`` returns its argument itself to mean "unchanged".
    """
    cls = type(value)
    if cls is list or cls is tuple:
        rebuilt: list[Any] | None = None
        for i, item in enumerate(value):
            new = item if type(item) in ATOMS else rewrite(item, leaf)
            if rebuilt is None:
                if new is item:
                    continue
                rebuilt = list(value[:i])
            rebuilt.append(new)
        if rebuilt is None:
            return value
        return rebuilt if cls is list else tuple(rebuilt)
    if cls is dict:
        changed: dict[Any, Any] | None = None
        for key, item in value.items():
            if type(item) in ATOMS:
                continue
            new = rewrite(item, leaf)
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed
    if cls in ATOMS:
        return value
    return leaf(value)


def resolve_refs(value: Any, results: Mapping[int, Any]) -> Any:
    """Return ``value`` with every :class:`DepRef` replaced by ``results[task_id]``.

    Walks the same places the planner fills: the value itself and, at any
    depth, list and tuple items and dict values. Containers with no
    :class:`DepRef` inside come back as the same object. Raises ``KeyError``
    for a DepRef whose result is missing from ``results``.
    """

    def leaf(item: Any) -> Any:
        if type(item) is DepRef:
            return results[item.slot]
        return item

    return rewrite(value, leaf)


class FieldMissing(LookupError):
    """A path that does not exist in a value; the text says where it stopped."""


def extract(value: Any, path: Path) -> Any:
    """The field of ``value`` at ``path``: each step a dict key, then an attribute, then an index.

    A step that is a digit string (``"0"``, ``"-1"``) also indexes lists and
    tuples, and an int step is tried as a key, then as an index. Raises
    :class:`FieldMissing` naming the step and the type it stopped at.
    """
    current = value
    for depth, step in enumerate(path):
        found, current = _step(current, step)
        if not found:
            raise FieldMissing(_missing(current, step, path[:depth]))
    return current


_NOTHING: Any = object()


def _step(value: Any, step: PathItem) -> tuple[bool, Any]:
    """(True, the value one step down) or (False, ``value`` itself)."""
    number = _as_index(step)
    if isinstance(value, Mapping):
        for key in (step, number) if number is not None and number != step else (step,):
            try:
                return True, value[key]
            except (KeyError, TypeError):
                continue
    if isinstance(step, str):
        found = getattr(value, step, _NOTHING)
        if found is not _NOTHING:
            return True, found
    if number is not None and isinstance(value, list | tuple):
        try:
            return True, value[number]
        except IndexError:
            pass
    return False, value


def _as_index(step: PathItem) -> int | None:
    if type(step) is int:
        return step
    if isinstance(step, str) and step.removeprefix("-").isdigit():
        return int(step)
    return None


def _missing(value: Any, step: PathItem, before: Path) -> str:
    where = f" at {'.'.join(map(str, before))!r}" if before else ""
    kind = type(value).__name__
    if isinstance(value, Mapping):
        keys = [repr(key) for key in list(value)[:10]]
        more = ", ..." if len(value) > 10 else ""
        shown = f"{kind} with keys [{', '.join(keys)}{more}]"
    elif isinstance(value, list | tuple):
        shown = f"{kind} of length {len(value)}"
    else:
        shown = kind
    return f"has no field {step!r}{where} (stopped at {shown})"


# --- bundles: a result with its asked fields, split by the node without unpickling ---


@dataclass(frozen=True, slots=True)
class FieldMiss:
    """An asked field that the result did not have: the reference text and why."""

    reference: str
    reason: str


Bundled = Blob | FieldMiss


def pack_bundle(whole: Blob | None, fields: Sequence[Bundled]) -> Blob:
    """One Blob holding ``whole`` (if wanted) and every asked field, in order.

    Its first part is a JSON manifest (part counts, or a miss's text); the
    other parts are the members' own parts, so nothing is copied.
    """
    manifest: dict[str, Any] = {
        "whole": None if whole is None else len(whole.parts),
        "fields": [
            [item.reference, item.reason] if isinstance(item, FieldMiss) else len(item.parts)
            for item in fields
        ],
    }
    parts: list[Any] = [json.dumps(manifest).encode()]
    if whole is not None:
        parts.extend(whole.parts)
    for item in fields:
        if isinstance(item, Blob):
            parts.extend(item.parts)
    return Blob(parts)


def unpack_bundle(blob: Blob) -> tuple[Blob | None, tuple[Bundled, ...]]:
    """Split a bundle made by :func:`pack_bundle`; ValueError if it is not one."""
    try:
        manifest = json.loads(bytes(blob.parts[0]))
        counts = [manifest["whole"], *manifest["fields"]]
    except (IndexError, TypeError, KeyError, ValueError) as exc:
        raise ValueError(f"not a result bundle: {exc}") from None
    parts = blob.parts
    at = 1
    members: list[Bundled | None] = []
    for count in counts:
        if count is None:
            members.append(None)
        elif isinstance(count, list) and len(count) == 2:
            members.append(FieldMiss(str(count[0]), str(count[1])))
        elif type(count) is int and count > 0 and at + count <= len(parts):
            members.append(Blob(parts[at : at + count]))
            at += count
        else:
            raise ValueError("not a result bundle: bad manifest entry")
    if at != len(parts) or isinstance(members[0], FieldMiss):
        raise ValueError("not a result bundle: its parts do not match its manifest")
    whole = members[0]
    fields = tuple(member for member in members[1:] if member is not None)
    if len(fields) != len(members) - 1:
        raise ValueError("not a result bundle: a field without a value")
    return whole, fields


__all__ = [
    "ATOMS",
    "DepRef",
    "FieldMiss",
    "FieldMissing",
    "Path",
    "extract",
    "field_key",
    "pack_bundle",
    "resolve_refs",
    "rewrite",
    "unpack_bundle",
]
