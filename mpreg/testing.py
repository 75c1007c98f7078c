"""Public test helpers: real clusters of node processes on ephemeral ports."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from mpreg.actors.loader import served_fields
from mpreg.config import NodeConfig
from mpreg.host.cluster import LocalCluster


@asynccontextmanager
async def run_cluster(*configs: NodeConfig) -> AsyncIterator[LocalCluster]:
    """Start one node process per config (the first is the head, the rest join it).

    Every node listens on 127.0.0.1 port 0 unless its config says otherwise,
    shares a fresh random token, and is stopped (with its workers) on exit.
    """
    cluster = LocalCluster()
    try:
        for config in configs or (NodeConfig(),):
            await cluster.add_node(config)
        yield cluster
    finally:
        await cluster.stop()


def node(
    name: str = "node",
    *,
    actors: Iterable[Any] = (),
    functions: Iterable[Any] = (),
    **fields: Any,
) -> NodeConfig:
    """A NodeConfig with test-friendly defaults (one function worker).

    ``actors`` and ``functions`` may be objects (sent by value, through the
    codec) or ``"module:Name"`` strings.
    """
    fields.setdefault("workers", 1)
    return NodeConfig(name=name, **served_fields(actors=actors, functions=functions), **fields)


__all__ = ["LocalCluster", "node", "run_cluster"]
