"""Typed snapshots of the cluster: what ``mpreg status``, ``mpreg top`` and
``mpreg.cluster_status()`` show."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from typing import Any

from mpreg.protocol.messages import EndpointStats, NodeStats


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """One moment of the cluster, as seen from the node that answered."""

    nodes: tuple[NodeStats, ...]

    @property
    def endpoints(self) -> list[EndpointStats]:
        return [ep for node in self.nodes for ep in node.endpoints]

    @property
    def actors(self) -> list[EndpointStats]:
        return [ep for ep in self.endpoints if ep.kind == "actor"]

    @property
    def datasets(self) -> set[str]:
        return {d for ep in self.endpoints for d in ep.datasets}

    @property
    def functions(self) -> set[str]:
        return {f for ep in self.endpoints for f in ep.functions}

    def to_dict(self) -> dict[str, Any]:
        return {"nodes": [asdict(n) for n in self.nodes]}


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (0 where /proc is not there or the process is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]
