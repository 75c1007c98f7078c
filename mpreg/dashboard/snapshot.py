"""Dashboard data: a frozen snapshot of the cluster, built without any I/O.

:func:`build_snapshot` turns a :class:`~mpreg.status.ClusterStatus` (and the
previous snapshot, for rates) into rows for nodes and for their processes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace

from mpreg.protocol.messages import EndpointStats
from mpreg.status import ClusterStatus


@dataclass(frozen=True, slots=True)
class EndpointRow:
    """One actor replica or plain-function worker process."""

    endpoint_id: str
    node: str
    kind: str
    label: str
    datasets: tuple[str, ...]
    functions: tuple[str, ...]
    pid: int
    state: str
    calls: int
    calls_per_s: float | None
    in_flight: int
    p50_ms: float
    p99_ms: float
    errors: int
    restarts: int
    rss_bytes: int
    errors_per_s: float | None = None
    last_error: str = ""
    queued: int = 0  # calls waiting on its node for a slot on it (in_flight: sent to it)
    replica: int = 1  # 1-based among the same actor's processes on its node
    replicas: int = 1


@dataclass(frozen=True, slots=True)
class NodeRow:
    """One node and the totals of the processes it hosts.

    ``rss_bytes`` is the node's own memory plus its processes'. ``p50_ms`` is
    the calls-weighted median of its processes' p50s and ``p99_ms`` the worst
    of their p99s (the nodes report percentiles per process only).
    """

    node_id: str
    name: str
    address: str
    role: str
    state: str
    pid: int
    actors: int
    workers: int
    calls: int
    calls_per_s: float | None
    in_flight: int
    p50_ms: float
    p99_ms: float
    errors: int
    restarts: int
    rss_bytes: int
    errors_per_s: float | None = None


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the dashboard shows at one moment; ``error`` if the last sample failed."""

    source: str
    taken_at: float
    nodes: tuple[NodeRow, ...] = ()
    endpoints: tuple[EndpointRow, ...] = ()
    error: str = ""


def build_snapshot(
    status: ClusterStatus, *, source: str, now: float, previous: Snapshot | None = None
) -> Snapshot:
    """A snapshot of ``status``; calls/s are measured against ``previous`` (else None)."""
    dt = now - previous.taken_at if previous is not None else 0.0
    before = {e.endpoint_id: (e.calls, e.errors) for e in previous.endpoints} if previous else {}

    def rates(ep: EndpointStats) -> tuple[float | None, float | None]:
        if dt <= 0 or ep.endpoint_id not in before:
            return None, None
        calls, errors = before[ep.endpoint_id]
        # A restarted process counts from zero again: never a negative rate.
        return max(0, ep.calls - calls) / dt, max(0, ep.errors - errors) / dt

    nodes: list[NodeRow] = []
    endpoints: list[EndpointRow] = []
    for stats in status.nodes:
        rows = _numbered([_endpoint_row(ep, stats.node.name, *rates(ep)) for ep in stats.endpoints])
        endpoints += rows
        node_rate = sum(r.calls_per_s or 0.0 for r in rows) if dt > 0 else None
        node_errors = sum(r.errors_per_s or 0.0 for r in rows) if dt > 0 else None
        nodes.append(
            NodeRow(
                node_id=stats.node.node_id,
                name=stats.node.name,
                address=stats.node.address,
                role=stats.node.role,
                state=stats.state,
                pid=stats.pid,
                actors=sum(r.kind == "actor" for r in rows),
                workers=sum(r.kind != "actor" for r in rows),
                calls=sum(r.calls for r in rows),
                calls_per_s=node_rate,
                in_flight=sum(r.in_flight for r in rows),
                p50_ms=_weighted_median([(r.p50_ms, r.calls) for r in rows]),
                p99_ms=max((r.p99_ms for r in rows if r.calls), default=0.0),
                errors=sum(r.errors for r in rows),
                restarts=sum(r.restarts for r in rows),
                rss_bytes=stats.rss_bytes + sum(r.rss_bytes for r in rows),
                errors_per_s=node_errors,
            )
        )
    return Snapshot(source, now, tuple(nodes), tuple(endpoints))


def _numbered(rows: list[EndpointRow]) -> list[EndpointRow]:
    """Rows numbered 1..n among the same actor's processes on one node (not endpoint ids)."""
    groups: dict[tuple[str, str], list[int]] = {}
    for i, row in enumerate(rows):
        groups.setdefault((row.kind, row.label), []).append(i)
    numbered = list(rows)
    for indexes in groups.values():
        ordered = sorted(indexes, key=lambda i: _id_order(rows[i].endpoint_id))
        for k, i in enumerate(ordered, 1):
            numbered[i] = replace(rows[i], replica=k, replicas=len(indexes))
    return numbered


def _id_order(endpoint_id: str) -> tuple[int, str]:
    suffix = endpoint_id.rpartition("-")[2]
    return (int(suffix) if suffix.isdigit() else 0, endpoint_id)


def _endpoint_row(
    ep: EndpointStats, node: str, per_s: float | None, errors_per_s: float | None
) -> EndpointRow:
    return EndpointRow(
        endpoint_id=ep.endpoint_id,
        node=node,
        kind=ep.kind,
        label=ep.label,
        datasets=ep.datasets,
        functions=ep.functions,
        pid=ep.pid,
        state=ep.state,
        calls=ep.calls,
        calls_per_s=per_s,
        in_flight=ep.in_flight,
        p50_ms=ep.p50_ms,
        p99_ms=ep.p99_ms,
        errors=ep.errors,
        restarts=ep.restarts,
        rss_bytes=ep.rss_bytes,
        errors_per_s=errors_per_s,
        last_error=ep.last_error,
        queued=ep.queued,
    )


def _weighted_median(pairs: Iterable[tuple[float, int]]) -> float:
    ordered = sorted((value, weight) for value, weight in pairs if weight > 0)
    half = sum(weight for _, weight in ordered) / 2
    seen = 0
    for value, weight in ordered:
        seen += weight
        if seen >= half:
            return value
    return 0.0
