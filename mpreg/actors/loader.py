"""Import user modules for a node and turn what they declare into worker specs."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
import traceback
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

from mpreg.actors.definitions import (
    BUILTIN_FUNCTIONS,
    actor_options,
    function_name,
)
from mpreg.actors.specs import ActorSpec, FunctionsSpec
from mpreg.errors import ModuleLoadError

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
        if target.endswith(".py") or "/" in target:
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
