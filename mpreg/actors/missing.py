"""A value a worker cannot unpickle because its environment lacks a module.

The driver's environment had the module (it pickled the value); the
cluster's does not. The error then says which module, on which node and in
which Python, and how to add it there: the person reading it is usually at
the driver, far from the node's environment.
"""

from __future__ import annotations

import sys
from pathlib import Path

from mpreg.errors import SerializationError


def explain_missing_module(exc: SerializationError, endpoint_id: str) -> SerializationError:
    """``exc`` reworded if a missing module caused it, else ``exc`` itself.

    ``endpoint_id`` is the worker's ("node_id/label-n"): its node is named.
    """
    cause = exc.__cause__
    if not isinstance(cause, ModuleNotFoundError) or not cause.name:
        return exc
    module = cause.name.partition(".")[0]
    node = endpoint_id.partition("/")[0]
    python = sys.executable
    text = str(exc).partition(":")[0]  # "cannot unpickle arguments of 'c'"
    explained = SerializationError(
        f"{text}: module {module!r} is not installed on node {node!r} (its Python: {python}). "
        f"{how_to_install(module, python)}, then restart the cluster's nodes",
        command=exc.command,
    )
    explained.__cause__ = cause
    return explained


def how_to_install(module: str, python: str) -> str:
    """How to add ``module`` to the environment of ``python`` (the package may be named
    otherwise: the module name is the best guess there is)."""
    venv = Path(python).parent.parent
    if (venv.parent / "pyproject.toml").exists() and venv.name == ".venv":
        return f"Add it to the project in {venv.parent}: `uv add {module}`"
    return f"Install it there: `{python} -m pip install {module}` (or `uv pip install {module}`)"


__all__ = ["explain_missing_module", "how_to_install"]
