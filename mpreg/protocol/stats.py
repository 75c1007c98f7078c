"""What a node reports about itself and its processes (``mpreg status``, ``mpreg top``).

Plain records inside a status ``Reply``; re-exported by :mod:`mpreg.protocol.messages`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from mpreg.protocol.codec import fast_pickle


@fast_pickle
@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    name: str
    address: str  # host:port other nodes and clients dial
    role: Literal["SERVER", "BALANCER"] = "BALANCER"


@fast_pickle
@dataclass(frozen=True, slots=True)
class EndpointStats:
    endpoint_id: str
    node_id: str
    kind: str
    label: str
    functions: tuple[str, ...]
    datasets: tuple[str, ...]
    pid: int
    state: str
    in_flight: int
    calls: int
    errors: int
    restarts: int
    rss_bytes: int
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    last_error: str = ""  # why its process last failed to start (a crash loop), if it did
    # Calls in the latency window (mpreg.node.metrics, about a minute); with none,
    # p50/p90/p99 are no figure (0.0 here, null in JSON).
    window_calls: int = 0
    p90_ms: float = 0.0
    bytes_in: int = 0  # arguments and dependency results sent to its process
    bytes_out: int = 0  # results its process sent back
    cpu_seconds: float | None = None  # user+system CPU of its process; None: unknown
    # Every call's latency so far, counted per mpreg.node.metrics.BOUNDS_MS bucket
    # (the last counts the slower ones), and their sum: a Prometheus histogram.
    latency_buckets: tuple[int, ...] = ()
    latency_sum_ms: float = 0.0
    queued: int = 0  # calls waiting on its node that it could take (counted for each replica)
    # Of ``calls``, those clients sent straight to it (mpreg.protocol.lanes), and the
    # seconds they took there from arrival to answer; ``calls`` and ``errors`` count them.
    lane_calls: int = 0
    lane_busy_seconds: float = 0.0


@fast_pickle
@dataclass(frozen=True, slots=True)
class NodeStats:
    node: NodeInfo
    state: str
    pid: int
    rss_bytes: int
    calls: int
    in_flight: int
    endpoints: tuple[EndpointStats, ...] = field(default_factory=tuple)
    queued: int = 0  # calls waiting on the node for a free slot (also counted in in_flight)
    cpu_seconds: float | None = None  # the node process's user+system CPU; None: unknown
    # Every member this node knows and its SWIM state (alive/suspect/dead/left), by name;
    # empty in a peer's answer to a cluster status (the asker lists them once).
    members: tuple[tuple[str, str], ...] = ()
    # Values this node holds for its clients' futures and puts (mpreg.node.store).
    store_bytes: int = 0
    store_values: int = 0
    # Bytes read from and written to the links to other members now open.
    peer_bytes_in: int = 0
    peer_bytes_out: int = 0
