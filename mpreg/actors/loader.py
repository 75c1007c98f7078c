"""Import user modules for a node and turn what they declare into worker specs.

A :class:`~mpreg.config.NodeConfig` only names what a node serves; this is
where the names become objects, once, when the node starts
(:func:`load_served`). Objects handed over as such (an embedded cluster's
classes) travel beside the names as a codec blob (:func:`pack_served`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from mpreg.actors.definitions import (
    BUILTIN_FUNCTIONS,
    actor_options,
    discover,
    function_name,
)
from mpreg.actors.specs import ActorSpec, FunctionsSpec
from mpreg.config import NodeConfig
from mpreg.errors import ModuleLoadError
from mpreg.protocol.blob import Blob
from mpreg.protocol.codec import dumps_value, loads_value

# Modules this process imported from files, by the name they were given:
# child processes import the same files under the same names (environment.py),
# so functions and classes pickle by reference and tracebacks show real lines.
FILE_MODULES: dict[str, str] = {}


def load_module(target: str) -> ModuleType:
    """Import a dotted module name or a ``.py`` file path.

    Raises ModuleLoadError with a message to show as it is: one line when the
    module does not exist, else the traceback from the user's own code.
    """
    try:
        if is_module_path(target):
            path = Path(target).resolve()
            if not path.is_file():
                raise ModuleLoadError(f"module file {target!r} does not exist")
            return import_file(path)
        return importlib.import_module(target)
    except ModuleLoadError:
        raise
    except ModuleNotFoundError as exc:
        if exc.name and target.startswith(exc.name):
            raise ModuleLoadError(f"cannot import {target!r}: {exc}") from exc
        raise ModuleLoadError(f"cannot import {target!r}:\n{_user_traceback(exc)}") from exc
    except BaseException as exc:
        raise ModuleLoadError(f"cannot import {target!r}:\n{_user_traceback(exc)}") from exc


def is_module_path(target: str) -> bool:
    """Whether a module target is a file path (``x.py``, ``lib/x``), not a dotted name."""
    return target.endswith(".py") or "/" in target


def split_spec(spec: str, kind: str = "actor") -> tuple[str, str]:
    """``module:Name`` -> (module, name); ValueError if it does not look like that."""
    module_name, sep, name = spec.rpartition(":")
    if not sep or not module_name or not name.isidentifier():
        raise ValueError(f"{kind} {spec!r} must look like 'package.module:Class'")
    return module_name, name


def load_object(spec: str, kind: str = "actor") -> Any:
    """Import ``module:Name`` (a dotted module or a .py path) and return that object.

    Raises ModuleLoadError if the module does not import or has no such
    name (a class for an actor, a callable for a function).
    """
    try:
        module_name, name = split_spec(spec, kind)
    except ValueError as exc:
        raise ModuleLoadError(str(exc)) from None
    found = getattr(load_module(module_name), name, None)
    wanted = (lambda v: isinstance(v, type)) if kind == "actor" else callable
    if not wanted(found):
        what = "class" if kind == "actor" else "function"
        raise ModuleLoadError(f"{kind} {spec!r}: {module_name} has no {what} {name!r}")
    return found


@dataclass(frozen=True, slots=True)
class ServedObjects:
    """Functions and actor classes handed to a node as objects, not names."""

    functions: tuple[Callable[..., Any], ...] = ()
    actors: tuple[type, ...] = ()


def pack_served(functions: Iterable[Any] = (), actors: Iterable[type] = ()) -> tuple[bytes, ...]:
    """Objects for :attr:`NodeConfig.by_value`: a codec blob's parts (by reference
    where they import, by value otherwise, as cloudpickle decides)."""
    served = ServedObjects(tuple(functions), tuple(actors))
    if not (served.functions or served.actors):
        return ()
    blob = dumps_value(served, what="the functions and actors to serve")
    return tuple(bytes(part) for part in blob.parts)


def served_fields(actors: Iterable[Any] = (), functions: Iterable[Any] = ()) -> dict[str, Any]:
    """NodeConfig fields serving ``actors`` and ``functions``, each an object or a name.

    ``"module:Name"`` strings stay names; objects are packed by value.
    """
    actors, functions = list(actors), list(functions)
    return {
        "actors": tuple(a for a in actors if isinstance(a, str)),
        "functions": tuple(f for f in functions if isinstance(f, str)),
        "by_value": pack_served(
            functions=[f for f in functions if not isinstance(f, str)],
            actors=[a for a in actors if not isinstance(a, str)],
        ),
    }


def load_served(config: NodeConfig) -> tuple[list[Callable[..., Any]], list[type]]:
    """What a node serves: (functions, actor classes), imported now.

    In order: the objects handed over by value, the named ``actors`` and
    ``functions``, then what each of ``modules`` declares. Raises
    ModuleLoadError (with the user's traceback) if any of them fails.
    """
    functions: list[Callable[..., Any]] = []
    actors: list[type] = []
    if config.by_value:
        served = loads_value(Blob(config.by_value), what="the functions and actors to serve")
        functions += served.functions
        actors += [a for a in served.actors if isinstance(a, type)]
    actors += [load_object(spec, "actor") for spec in config.actors]
    functions += [load_object(spec, "function") for spec in config.functions]
    for target in config.modules:
        found = discover(load_module(target))
        functions += found.functions
        actors += found.actors
    return functions, actors


def import_file(path: Path, name: str | None = None) -> ModuleType:
    """Import the Python file at ``path`` as a module (named after it unless ``name``)."""
    if name is None:
        digest = hashlib.sha1(str(path).encode()).hexdigest()[:8]
        name = f"mpreg_user_{path.stem}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    FILE_MODULES[name] = str(path)
    return module


def _user_traceback(exc: BaseException) -> str:
    """The traceback without importlib's and this module's own frames."""
    frames = [
        frame
        for frame in traceback.extract_tb(exc.__traceback__)
        if not frame.filename.startswith("<frozen importlib") and frame.filename != __file__
    ]
    lines = traceback.format_list(frames)
    head = ["Traceback (most recent call last):\n"] if lines else []
    return "".join(head + lines + traceback.format_exception_only(type(exc), exc)).rstrip()


def functions_spec(functions: Iterable[Any], datasets: Iterable[str] = ()) -> FunctionsSpec:
    """The plain-function worker spec: built-ins plus the given functions."""
    table = dict(BUILTIN_FUNCTIONS)
    for fn in functions:
        table[function_name(fn)] = fn
    return FunctionsSpec(functions=table, datasets=tuple(datasets))


def actor_spec(cls: type) -> tuple[ActorSpec, int]:
    """The spec of an @mpreg.actor class and how many replicas it asks for."""
    options = actor_options(cls)
    return ActorSpec(cls=cls, datasets=options.datasets, label=options.name), options.replicas
