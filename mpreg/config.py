"""Frozen configuration. The CLI, config files and ``mpreg.init()`` all build these."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7773


def default_workers() -> int:
    """Plain-function worker processes per node: one per core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything one node needs to start.

    ``resources`` are the datasets this node's plain-function workers
    advertise (none: the node is a BALANCER unless it hosts actors).
    ``modules`` are imported by the node; the ``@mpreg.function``s and
    ``@mpreg.actor``s defined there are served. ``actors`` are extra actor
    classes (objects, for embedded clusters). ``peers`` are nodes to join.
    """

    name: str = "mpreg-node"
    host: str = DEFAULT_HOST
    port: int = 0
    token: str = ""
    resources: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    actors: tuple[object, ...] = field(default=(), compare=False)
    functions: tuple[object, ...] = field(default=(), compare=False)
    workers: int = field(default_factory=default_workers)
    advertise_host: str = ""  # the host peers and clients dial; defaults to ``host``
