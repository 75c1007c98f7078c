"""``mpreg status`` and ``mpreg top``: cluster snapshots, and how they are drawn.

Collecting and drawing are separate. :func:`build_snapshot` turns a
:class:`~mpreg.status.ClusterStatus` (and the previous snapshot, for rates)
into a frozen :class:`Snapshot` without any I/O; :func:`render_top` and
:func:`render_status` turn a snapshot into rich renderables (tested at fixed
console widths); :class:`Collector` and :func:`run_top` are the only parts
that talk to the cluster.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from mpreg.client import Client
from mpreg.errors import ClusterUnavailable, MpregError
from mpreg.protocol.messages import EndpointStats
from mpreg.status import ClusterStatus

SAMPLE_TIMEOUT = 5.0
STATE_STYLES = {
    "alive": "green",
    "running": "green",
    "starting": "yellow",
    "restarting": "yellow",
    "unreachable": "red",
    "failed": "red",
    "dead": "red",
}


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


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What the dashboard shows at one moment; ``error`` if the last sample failed."""

    source: str
    taken_at: float
    nodes: tuple[NodeRow, ...] = ()
    endpoints: tuple[EndpointRow, ...] = ()
    error: str = ""

    def __rich__(self) -> RenderableType:
        return render_top(self)


def build_snapshot(
    status: ClusterStatus, *, source: str, now: float, previous: Snapshot | None = None
) -> Snapshot:
    """A snapshot of ``status``; calls/s are measured against ``previous`` (else None)."""
    dt = now - previous.taken_at if previous is not None else 0.0
    before = {e.endpoint_id: e.calls for e in previous.endpoints} if previous else {}

    def rate(endpoint_id: str, calls: int) -> float | None:
        if dt <= 0 or endpoint_id not in before:
            return None
        return max(0, calls - before[endpoint_id]) / dt

    nodes: list[NodeRow] = []
    endpoints: list[EndpointRow] = []
    for stats in status.nodes:
        rows = [
            _endpoint_row(ep, stats.node.name, rate(ep.endpoint_id, ep.calls))
            for ep in stats.endpoints
        ]
        endpoints += rows
        node_rate = sum(r.calls_per_s or 0.0 for r in rows) if dt > 0 else None
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
            )
        )
    return Snapshot(source, now, tuple(nodes), tuple(endpoints))


def _endpoint_row(ep: EndpointStats, node: str, per_s: float | None) -> EndpointRow:
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


# --- drawing ----------------------------------------------------------------------


def fmt_bytes(n: int) -> str:
    if n <= 0:
        return "-"
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


def fmt_ms(ms: float) -> str:
    if ms <= 0:
        return "-"
    return f"{ms:.2f}" if ms < 10 else f"{ms:.0f}"


def fmt_rate(per_s: float | None) -> str:
    if per_s is None:
        return "…"
    return f"{per_s:.0f}" if per_s >= 10 or per_s == 0 else f"{per_s:.1f}"


def _state(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def _num(n: int, warn: bool = False) -> Text:
    return Text(str(n), style="red" if warn and n else "")


def nodes_table(snapshot: Snapshot, *, rates: bool) -> Table:
    """One row per node: role, state, process counts and load."""
    table = Table(title="Nodes", title_justify="left", expand=False)
    for name, justify in (
        ("node", "left"),
        ("address", "left"),
        ("role", "left"),
        ("state", "left"),
    ):
        table.add_column(name, justify=justify, no_wrap=name != "node")  # type: ignore[arg-type]
    table.add_column("pid", justify="right")
    table.add_column("actors", justify="right")
    if rates:
        table.add_column("calls/s", justify="right")
    for name in ("calls", "in-flight", "p50 ms", "p99 ms", "errors", "restarts", "memory"):
        table.add_column(name, justify="right", no_wrap=True)
    for n in snapshot.nodes:
        row: list[RenderableType] = [
            Text(n.name, style="bold"),
            n.address,
            n.role,
            _state(n.state),
            str(n.pid or "-"),
            f"{n.actors}+{n.workers}w",
        ]
        if rates:
            row.append(fmt_rate(n.calls_per_s))
        row += [
            str(n.calls),
            str(n.in_flight),
            fmt_ms(n.p50_ms),
            fmt_ms(n.p99_ms),
            _num(n.errors, warn=True),
            _num(n.restarts, warn=True),
            fmt_bytes(n.rss_bytes),
        ]
        table.add_row(*row)
    return table


def processes_table(snapshot: Snapshot) -> Table:
    """``mpreg top``: one row per actor replica and worker process, actors first."""
    table = Table(title="Actors and workers", title_justify="left")
    table.add_column("process", style="bold", overflow="fold")
    table.add_column("node", overflow="fold")
    table.add_column("datasets", overflow="fold")
    table.add_column("state", no_wrap=True)
    for name in ("pid", "calls/s", "in-flight", "p50 ms", "p99 ms", "errors", "restarts", "memory"):
        table.add_column(name, justify="right", no_wrap=True)
    for e in _ordered(snapshot.endpoints):
        table.add_row(
            _process_name(e),
            e.node,
            ", ".join(e.datasets) or "-",
            _state(e.state),
            str(e.pid or "-"),
            fmt_rate(e.calls_per_s),
            str(e.in_flight),
            fmt_ms(e.p50_ms),
            fmt_ms(e.p99_ms),
            _num(e.errors, warn=True),
            _num(e.restarts, warn=True),
            fmt_bytes(e.rss_bytes),
        )
    return table


def actors_table(snapshot: Snapshot) -> Table:
    """``mpreg status``: actors (and worker pools) grouped per class and node."""
    table = Table(title="Actors and workers", title_justify="left")
    table.add_column("actor", style="bold")
    table.add_column("node")
    table.add_column("datasets", overflow="fold")
    table.add_column("functions", overflow="fold")
    table.add_column("replicas", justify="right")
    table.add_column("pids", overflow="fold")
    table.add_column("state")
    table.add_column("calls", justify="right")
    table.add_column("in-flight", justify="right")
    groups: dict[tuple[str, str, str], list[EndpointRow]] = {}
    for e in _ordered(snapshot.endpoints):
        groups.setdefault((e.kind, e.label, e.node), []).append(e)
    for (kind, label, node), rows in groups.items():
        states = sorted({r.state for r in rows})
        table.add_row(
            label if kind == "actor" else f"({label})",
            node,
            ", ".join(rows[0].datasets) or "-",
            ", ".join(rows[0].functions),
            str(len(rows)),
            ", ".join(str(r.pid) for r in rows if r.pid),
            _state(states[0]) if len(states) == 1 else ", ".join(states),
            str(sum(r.calls for r in rows)),
            str(sum(r.in_flight for r in rows)),
        )
    return table


def _ordered(rows: Sequence[EndpointRow]) -> list[EndpointRow]:
    return sorted(rows, key=lambda e: (e.kind != "actor", e.label, e.node, e.endpoint_id))


def _process_name(e: EndpointRow) -> str:
    suffix = e.endpoint_id.rpartition("-")[2]
    base = e.label if e.kind == "actor" else f"({e.label})"
    return f"{base} #{suffix}" if suffix.isdigit() else base


def _header(snapshot: Snapshot, title: str) -> Text:
    when = time.strftime("%H:%M:%S", time.localtime(snapshot.taken_at))
    nodes = len(snapshot.nodes)
    servers = sum(n.role == "SERVER" for n in snapshot.nodes)
    actors = sum(n.actors for n in snapshot.nodes)
    datasets = ", ".join(sorted({d for e in snapshot.endpoints for d in e.datasets})) or "-"
    text = Text(f"{title} ", style="bold")
    text.append(f"{snapshot.source}  {when}  ", style="dim")
    text.append(
        f"{nodes} nodes ({servers} SERVER, {nodes - servers} BALANCER), "
        f"{actors} actors, datasets: {datasets}"
    )
    return text


def render_top(snapshot: Snapshot) -> RenderableType:
    """The ``mpreg top`` frame."""
    parts: list[RenderableType] = [_header(snapshot, "mpreg top")]
    if snapshot.error:
        parts.append(Text(f"cluster unavailable: {snapshot.error} (retrying)", style="bold red"))
    if snapshot.nodes:
        parts += [nodes_table(snapshot, rates=True), processes_table(snapshot)]
    parts.append(
        Text(
            "calls/s over the last interval; p50/p99 over recent calls. Ctrl-C quits.", style="dim"
        )
    )
    return Group(*parts)


def render_status(snapshot: Snapshot) -> RenderableType:
    """The ``mpreg status`` report."""
    return Group(
        _header(snapshot, "mpreg cluster"),
        nodes_table(snapshot, rates=False),
        actors_table(snapshot),
    )


# --- collecting -------------------------------------------------------------------


class Collector:
    """Samples the cluster through one client, reconnecting after a failure."""

    def __init__(self, address: str, token: str | None) -> None:
        self.address = address
        self.token = token
        self._client: Client | None = None
        self._last: Snapshot | None = None

    async def sample(self) -> Snapshot:
        """The next snapshot; on failure the last one's rows with ``error`` set."""
        try:
            async with asyncio.timeout(SAMPLE_TIMEOUT):
                if self._client is None or not self._client.connected:
                    await self.close()
                    client = Client(self.address, token=self.token, name="mpreg-top")
                    await client.connect()
                    self._client = client
                status = await self._client.status()
        except (MpregError, OSError, TimeoutError) as exc:
            await self.close()
            last = self._last or Snapshot(self.address, time.time())
            message = str(exc) or type(exc).__name__
            return Snapshot(last.source, time.time(), last.nodes, last.endpoints, error=message)
        self._last = build_snapshot(
            status, source=self.address, now=time.time(), previous=self._last
        )
        return self._last

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


async def fetch_status(address: str, token: str | None) -> ClusterStatus:
    """One status reply from the node at ``address``; raises if it cannot be reached."""
    try:
        async with asyncio.timeout(SAMPLE_TIMEOUT):
            async with Client(address, token=token, name="mpreg-status") as client:
                return await client.status()
    except TimeoutError:
        raise ClusterUnavailable(f"no status from {address} within {SAMPLE_TIMEOUT:g}s") from None


async def run_top(
    address: str, token: str | None, *, console: Console, interval: float = 1.0, once: bool = False
) -> None:
    """Draw the live dashboard every ``interval`` seconds until cancelled.

    ``once`` draws a single frame after one interval (so rates are known).
    """
    collector = Collector(address, token)
    try:
        first = await collector.sample()
        if first.error and not first.nodes:
            raise ClusterUnavailable(first.error)
        if once:
            await asyncio.sleep(interval)
            console.print(render_top(await collector.sample()))
            return
        with Live(
            render_top(first), console=console, auto_refresh=False, screen=console.is_terminal
        ) as live:
            next_tick = time.monotonic()
            while True:
                next_tick += interval
                await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
                live.update(render_top(await collector.sample()), refresh=True)
    finally:
        await collector.close()
