"""Functions the field-reference tests serve (imported by name in node processes)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass
class Reading:
    label: str
    rows: list[dict[str, object]]


def produce(size: int = 0) -> dict[str, object]:
    """A result with nested fields, an object, a tuple, and ``size`` bytes of bulk."""
    return {
        "bulk": b"x" * size,
        "label": "small",
        "rows": [{"label": "r0"}, {"label": "r1", "tags": ("a", "b")}],
        "reading": Reading("obj", [{"label": "deep"}]),
        "pair": (1, 2),
        "pid": os.getpid(),
    }


def take(*args: object, **kwargs: object) -> dict[str, object]:
    """What it was given, with the type names, and where it ran."""
    return {
        "args": list(args),
        "kwargs": kwargs,
        "types": [type(a).__name__ for a in args],
        "pid": os.getpid(),
    }


def size(value: object) -> int:
    return len(value)  # type: ignore[arg-type]


def pair() -> tuple[int, int]:
    return (1, 2)


async def produce_later() -> dict[str, object]:
    """The same result from a coroutine function (answered from its task, not inline)."""
    return produce()
