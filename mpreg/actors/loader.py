"""Import user modules for a node and turn what they declare into worker specs."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType
from typing import Any

import cloudpickle

from mpreg.actors.definitions import (
    BUILTIN_FUNCTIONS,
    actor_options,
    function_name,
)
from mpreg.actors.specs import ActorSpec, FunctionsSpec


class ModuleLoadError(Exception):
    """A user module could not be imported; the message carries its traceback."""


def load_module(target: str) -> ModuleType:
    """Import a dotted module name or a ``.py`` file path.

    Code from a file is shipped to workers by value (it may not be importable
    there); a dotted module is imported by name in each worker.
    """
    try:
        if target.endswith(".py") or "/" in target:
            path = Path(target).resolve()
            if not path.is_file():
                raise ModuleLoadError(f"module file {target!r} does not exist")
            name = f"mpreg_user_{path.stem}"
            spec = importlib.util.spec_from_file_location(name, path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[name] = module
            spec.loader.exec_module(module)
            cloudpickle.register_pickle_by_value(module)
            return module
        return importlib.import_module(target)
    except ModuleLoadError:
        raise
    except BaseException as exc:
        import traceback

        text = "".join(traceback.format_exception(exc))
        raise ModuleLoadError(f"cannot import {target!r}:\n{text}") from exc


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
