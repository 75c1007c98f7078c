"""Placeholders for results inside a task's arguments, and the walk that fills them.

The driver's planner puts a :class:`DepRef` wherever a command's arguments use
another command's result; the worker that runs the task swaps each one for the
value with :func:`resolve_refs`. Both sides walk values the same way
(:func:`rewrite`), so what the planner can place the worker can find.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# Values of these exact types can never be, or contain, a reference (nested
# strings are not references), so the walkers skip them without a call.
ATOMS: frozenset[type] = frozenset({str, bytes, bytearray, int, float, complex, bool, type(None)})


@dataclass(frozen=True, slots=True)
class DepRef:
    """Placeholder for the result of task ``task_id``.

    Put in a task's arguments by the planner before pickling; the executing
    worker swaps it for the result with :func:`resolve_refs`.
    """

    task_id: int


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
            return results[item.task_id]
        return item

    return rewrite(value, leaf)


__all__ = ["ATOMS", "DepRef", "resolve_refs", "rewrite"]
