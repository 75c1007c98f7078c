"""Typed snapshots of the cluster: what ``mpreg status``, ``mpreg top`` and
``mpreg.cluster_status()`` show.

A snapshot shows itself as a person wants to read it: an HTML table in a
notebook (``_repr_html_``), a rich table in a terminal (``__rich__``), and
plain aligned text as its ``repr``. All three come from the same rows
(:func:`node_rows`, :func:`actor_rows`).
"""

from __future__ import annotations

import html
import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from mpreg.protocol.messages import EndpointStats, NodeStats

NODE_COLUMNS = ("node", "address", "state", "actors", "workers", "calls", "in flight")
ACTOR_COLUMNS = ("actor", "node", "datasets", "functions", "replicas", "state", "calls")

if TYPE_CHECKING:
    from rich.console import RenderableType
    from rich.table import Table


@dataclass(frozen=True, slots=True, repr=False)
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
        """Plain data for ``status --json``: ``None`` (null) wherever there is no figure.

        No figure: a node that did not answer (its counts are unknown, not 0),
        a process that has not started (no pid, memory or CPU), an endpoint
        with no call in its latency window (no p50, not 0 ms). The per-bucket
        latency counts stay on the wire (Prometheus reads them), not in JSON.
        """
        return {"nodes": [_node_json(n) for n in self.nodes]}

    def summary(self) -> str:
        """One line: how many nodes, actors, workers; which datasets; calls in flight."""
        workers = sum(1 for ep in self.endpoints if ep.kind != "actor")
        in_flight = sum(ep.in_flight for ep in self.endpoints)
        datasets = ", ".join(sorted(self.datasets)) or "none"
        return (
            f"{_plural(len(self.nodes), 'node')}, {_plural(len(self.actors), 'actor replica')}, "
            f"{_plural(workers, 'worker')}; datasets: {datasets}; {in_flight} calls in flight"
        )

    def __repr__(self) -> str:
        parts = [f"ClusterStatus: {self.summary()}", _text_table(NODE_COLUMNS, node_rows(self))]
        actors = actor_rows(self)
        if actors:
            parts.append(_text_table(ACTOR_COLUMNS, actors))
        return "\n\n".join(parts)

    def _repr_html_(self) -> str:
        parts = [
            f"<p><b>mpreg cluster</b>: {html.escape(self.summary())}</p>",
            _html_table(NODE_COLUMNS, node_rows(self)),
        ]
        actors = actor_rows(self)
        if actors:
            parts.append(_html_table(ACTOR_COLUMNS, actors))
        return "<div class='mpreg-status'>" + "".join(parts) + "</div>"

    def __rich__(self) -> RenderableType:
        from rich.console import Group  # rich is loaded where a status is drawn, not in nodes

        parts: list[RenderableType] = [
            f"[b]mpreg cluster[/b]: {self.summary()}",
            _rich_table(NODE_COLUMNS, node_rows(self)),
        ]
        actors = actor_rows(self)
        if actors:
            parts.append(_rich_table(ACTOR_COLUMNS, actors))
        return Group(*parts)


_NODE_FIGURES = (
    "pid",
    "rss_bytes",
    "calls",
    "in_flight",
    "queued",
    "cpu_seconds",
    "store_bytes",
    "store_values",
    "peer_bytes_in",
    "peer_bytes_out",
)
_LATENCIES = ("p50_ms", "p90_ms", "p99_ms")


def _node_json(node: NodeStats) -> dict[str, Any]:
    out = asdict(node)
    out["endpoints"] = [_endpoint_json(ep) for ep in node.endpoints]
    out["members"] = [{"name": name, "state": state} for name, state in node.members]
    if node.state != "alive":  # it did not answer: nothing it would have said is known
        out.update(dict.fromkeys(_NODE_FIGURES))
    elif not node.rss_bytes:
        out["rss_bytes"] = None
    return out


def _endpoint_json(ep: EndpointStats) -> dict[str, Any]:
    out = asdict(ep)
    del out["latency_buckets"], out["latency_sum_ms"]
    if not ep.window_calls:
        out.update(dict.fromkeys(_LATENCIES))
    if not ep.pid:
        out.update(pid=None, cpu_seconds=None)
    if not ep.pid or not ep.rss_bytes:
        out["rss_bytes"] = None
    return out


def node_rows(status: ClusterStatus) -> list[tuple[str, ...]]:
    """One row per node, in :data:`NODE_COLUMNS` order."""
    rows: list[tuple[str, ...]] = []
    for node in status.nodes:
        actors = sum(1 for ep in node.endpoints if ep.kind == "actor")
        rows.append(
            (
                node.node.name or node.node.node_id,
                node.node.address,
                node.state,
                str(actors),
                str(len(node.endpoints) - actors),
                str(node.calls),
                str(node.in_flight),
            )
        )
    return rows


def actor_rows(status: ClusterStatus) -> list[tuple[str, ...]]:
    """One row per actor class and node (its replicas counted), in :data:`ACTOR_COLUMNS` order."""
    names = {n.node.node_id: n.node.name or n.node.node_id for n in status.nodes}
    groups: dict[tuple[str, str], list[EndpointStats]] = {}
    for ep in status.actors:
        groups.setdefault((ep.label, ep.node_id), []).append(ep)
    rows: list[tuple[str, ...]] = []
    for (label, node_id), eps in sorted(groups.items()):
        states = sorted({ep.state for ep in eps})
        rows.append(
            (
                label,
                names.get(node_id, node_id),
                ", ".join(sorted({d for ep in eps for d in ep.datasets})) or "-",
                ", ".join(sorted({f for ep in eps for f in ep.functions})),
                str(len(eps)),
                "/".join(states),
                str(sum(ep.calls for ep in eps)),
            )
        )
    return rows


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _text_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(c), *(len(r[i]) for r in rows)) for i, c in enumerate(columns)]
    lines = [columns, *rows]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
        for line in lines
    )


def _html_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th style='text-align:left'>{html.escape(c)}</th>" for c in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td style='text-align:left'>{html.escape(v)}</td>" for v in row)
        + "</tr>"
        for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _rich_table(columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> Table:
    from rich.table import Table

    table = Table(*columns, box=None, header_style="bold", pad_edge=False)
    for row in rows:
        table.add_row(*row)
    return table


def rss_bytes(pid: int) -> int:
    """Resident memory of ``pid`` (0 where /proc is not there or the process is gone)."""
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
