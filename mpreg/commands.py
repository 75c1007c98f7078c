"""What a user asks for: named commands and explicit references between them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Command:
    """One named call in a request: run ``fun(*args, **kwargs)`` where ``datasets`` live.

    A top-level positional argument or keyword value that is a ``str`` equal to
    another command's name in the same request is replaced by that command's
    result; :class:`Ref` does the same explicitly, nested anywhere in lists,
    tuples and dicts.
    """

    name: str
    fun: str
    args: Sequence[Any] = ()
    datasets: Sequence[str] = ()
    kwargs: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class Ref:
    """An explicit reference to the result of the command called ``name``."""

    name: str
