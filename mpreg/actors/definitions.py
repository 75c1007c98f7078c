"""``@mpreg.function`` and ``@mpreg.actor``: declaring what a cluster serves."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, TypeVar

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

_ACTOR_ATTR = "__mpreg_actor__"
_FUNCTION_ATTR = "__mpreg_function__"


@dataclass(frozen=True, slots=True)
class ActorOptions:
    datasets: tuple[str, ...]
    replicas: int
    name: str


def function(fn: F | None = None, *, name: str | None = None) -> Any:
    """Mark a plain function to be served by every node's workers.

    Usable bare (``@mpreg.function``) or with a name (``@mpreg.function(name="f")``).
    """

    def mark(f: F) -> F:
        setattr(f, _FUNCTION_ATTR, name or f.__name__)
        return f

    return mark(fn) if fn is not None else mark


def actor(
    cls: type[T] | None = None,
    *,
    datasets: Iterable[str] = (),
    replicas: int = 1,
    name: str | None = None,
) -> Any:
    """Mark a class as a dataset actor: one long-lived process per replica.

    ``__init__`` runs once per replica (load the model there); public methods
    are the functions it serves, for the given ``datasets``.
    """
    if isinstance(datasets, str):
        raise TypeError(f"datasets must be a list of names, not a string: use [{datasets!r}]")
    if replicas < 1:
        raise ValueError("replicas must be at least 1")
    options_datasets = tuple(datasets)

    def mark(c: type[T]) -> type[T]:
        if not inspect.isclass(c):
            raise TypeError("@mpreg.actor decorates a class")
        setattr(c, _ACTOR_ATTR, ActorOptions(options_datasets, replicas, name or c.__name__))
        return c

    return mark(cls) if cls is not None else mark


def actor_options(cls: type) -> ActorOptions:
    """The class's @mpreg.actor options (defaults for an undecorated class)."""
    found = cls.__dict__.get(_ACTOR_ATTR)
    if isinstance(found, ActorOptions):
        return found
    return ActorOptions((), 1, cls.__name__)


def is_actor(cls: type) -> bool:
    """Whether ``cls`` itself is decorated with ``@mpreg.actor``."""
    return _ACTOR_ATTR in cls.__dict__


def public_methods(cls: type) -> tuple[str, ...]:
    """The function names an actor class serves: its public callables."""
    names = []
    for attr in dir(cls):
        if attr.startswith("_"):
            continue
        value = inspect.getattr_static(cls, attr)
        if isinstance(value, staticmethod | classmethod) or inspect.isfunction(value):
            names.append(attr)
    return tuple(sorted(names))


def function_name(fn: Callable[..., Any]) -> str:
    return str(getattr(fn, _FUNCTION_ATTR, None) or fn.__name__)


@dataclass(frozen=True)
class Discovered:
    functions: list[Callable[..., Any]] = field(default_factory=list)
    actors: list[type] = field(default_factory=list)


def discover(module: ModuleType) -> Discovered:
    """The functions and actor classes a module declares (defined in it, not imported)."""
    found = Discovered()
    for value in vars(module).values():
        if getattr(value, "__module__", None) != module.__name__:
            continue
        if inspect.isclass(value) and _ACTOR_ATTR in value.__dict__:
            found.actors.append(value)
        elif callable(value) and hasattr(value, _FUNCTION_ATTR):
            found.functions.append(value)
    return found


def echo(x: Any) -> Any:
    """Built in: return the one argument."""
    return x


def echos(*args: Any) -> list[Any]:
    """Built in: return the arguments as a list."""
    return list(args)


BUILTIN_FUNCTIONS: dict[str, Callable[..., Any]] = {"echo": echo, "echos": echos}
