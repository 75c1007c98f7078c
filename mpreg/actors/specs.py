"""What a worker process serves, as shipped to it (cloudpickled) by its node."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class FunctionsSpec:
    """A plain-function worker: ``functions`` by name, advertised for ``datasets``."""

    functions: dict[str, Callable[..., Any]]
    datasets: tuple[str, ...] = ()
    label: str = "functions"


@dataclass(frozen=True)
class ActorSpec:
    """One replica of a dataset actor: ``cls()`` is built once, its public methods served."""

    cls: type
    datasets: tuple[str, ...]
    label: str
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] | None = None
