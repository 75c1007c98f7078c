"""What ``mpreg.init(address, actors=..., functions=..., modules=...)`` deploys.

Against a running cluster, ``init`` never ignores what it is given to serve:
each actor class and function (objects, or ``"module:Name"`` strings, or every
one a module defines) is deployed by value, owned by this driver.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mpreg.actors.definitions import discover
from mpreg.actors.loader import load_module, load_object


async def deploy_served(
    deploy: Callable[[Any], Awaitable[Any]],
    actors: Sequence[Any],
    functions: Sequence[Any],
    modules: Sequence[str],
) -> None:
    """Deploy ``init``'s actors and functions with ``deploy`` (``Client.deploy``), in order."""
    actors = [load_object(a, "actor") if isinstance(a, str) else a for a in actors]
    functions = [load_object(f, "function") if isinstance(f, str) else f for f in functions]
    for module in modules:
        found = discover(load_module(module))
        actors, functions = [*actors, *found.actors], [*functions, *found.functions]
    for obj in [*actors, *functions]:
        await deploy(obj)
