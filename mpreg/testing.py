"""Public test helpers: real clusters of node processes on ephemeral ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

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


def node(name: str = "node", **fields: object) -> NodeConfig:
    """A NodeConfig with test-friendly defaults (one function worker)."""
    fields.setdefault("workers", 1)
    return NodeConfig(name=name, **fields)  # type: ignore[arg-type]


__all__ = ["LocalCluster", "node", "run_cluster"]
