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
    tuples and dicts. A top-level ``"NAME.path.to.field"``, where ``NAME`` is
    another command and the whole string is not a command name itself, is
    replaced by that field of ``NAME``'s result (see :class:`Ref`).
    """

    name: str
    fun: str
    args: Sequence[Any] = ()
    datasets: Sequence[str] = ()
    kwargs: Mapping[str, Any] | None = None


@dataclass(frozen=True, slots=True, init=False)
class Ref:
    """An explicit reference to the result of the command called ``name``, or to a field of it.

    ``Ref("rows", "0", "label")`` stands for ``rows_result["0"]`` if that
    exists, else the attribute, else (a digit string or an int) the list or
    tuple index: ``rows_result[0].label`` and the like. The field is taken out
    where the result was made; only the field travels to the consumer. A path
    the result does not have fails the consumer with :class:`~mpreg.FieldError`.
    """

    name: str
    path: tuple[str | int, ...]

    def __init__(self, name: str, *path: str | int) -> None:
        for step in path:
            if type(step) is not int and not isinstance(step, str):
                raise TypeError(f"Ref path steps are str or int, got {step!r}")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "path", tuple(path))
