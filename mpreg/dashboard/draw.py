"""Drawing snapshots with rich: the ``mpreg top`` frame and the ``mpreg status`` report.

Tables fit the console (see :mod:`.fit`): the pid goes before the address,
never the calls/s or p99, and the name column never. Everything here is
pure: a snapshot in, renderables out, so it is tested at fixed console widths.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.table import Table
from rich.text import Text

from mpreg.dashboard.fit import Cell, Column, fit_table
from mpreg.dashboard.snapshot import EndpointRow, Snapshot
from mpreg.dashboard.view import KEYS, History, ViewState, visible

STATE_STYLES = {
    "alive": "green",
    "running": "green",
    "idle": "dim",  # a function worker that starts on its first call
    "starting": "yellow",
    "restarting": "yellow",
    "crash-loop": "red",
    "unreachable": "red",
    "suspect": "yellow",
    "left": "dim",
    "failed": "red",
    "dead": "red",
}

PLAIN_FOOTER = "calls/s over the last interval; p50/p99 over recent calls. Ctrl-C quits."
SPARKS = "▁▂▃▄▅▆▇█"


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
    if ms < 10:
        return f"{ms:.2f}"
    return f"{ms:.1f}" if ms < 100 else f"{ms:.0f}"


def fmt_rate(per_s: float | None) -> str:
    if per_s is None:
        return "…"
    return f"{per_s:.0f}" if per_s >= 10 or per_s == 0 else f"{per_s:.1f}"


def sparkline(values: Iterable[float], width: int = 12) -> str:
    """The last ``width`` values as block characters, scaled to their maximum."""
    recent = list(values)[-width:]
    top = max(recent, default=0.0)
    if top <= 0:
        return SPARKS[0] * len(recent)
    return "".join(SPARKS[min(len(SPARKS) - 1, int(v / top * (len(SPARKS) - 1)))] for v in recent)


def _state(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def _count(n: int, *, alarm: bool = False) -> Text:
    return Text(str(n), style="red" if alarm and n else "")


def _short(text: str, limit: int = 30) -> str:
    line = text.strip().splitlines()[-1] if text.strip() else "-"
    return line if len(line) <= limit else line[: limit - 1] + "…"


NODE_COLUMNS = (
    Column("node", "left", style="bold"),
    Column("address", "left", drop=9),
    Column("role", "left", drop=8),
    Column("state", "left", drop=2),
    Column("pid", drop=10),
    Column("actors", drop=7),
    Column("calls/s"),
    Column("trend", "left", drop=6),
    Column("calls", drop=5),
    Column("in-flight", drop=4),
    Column("p50 ms", drop=5),
    Column("p99 ms", drop=3),
    Column("errors", drop=1),
    Column("restarts", drop=5),
    Column("memory", drop=3),
)


def nodes_table(
    snapshot: Snapshot, max_width: int, *, rates: bool, history: History | None = None
) -> Table:
    """One row per node: role, state, its processes and their load."""
    skip = set() if rates else {"calls/s", "trend"}
    columns = [c for c in NODE_COLUMNS if c.header not in skip]
    rows: list[list[Cell]] = []
    for n in snapshot.nodes:
        row: list[Cell] = [n.name, n.address, n.role, _state(n.state), str(n.pid or "-")]
        row.append(f"{n.actors}+{n.workers}w")
        if rates:
            trend = history.nodes.get(n.node_id, ()) if history else ()
            row += [fmt_rate(n.calls_per_s), Text(sparkline(trend), style="cyan")]
        row += [str(n.calls), str(n.in_flight), fmt_ms(n.p50_ms), fmt_ms(n.p99_ms)]
        row += [
            _count(n.errors, alarm=True),
            _count(n.restarts, alarm=True),
            fmt_bytes(n.rss_bytes),
        ]
        rows.append(row)
    return fit_table("Nodes", columns, rows, max_width)


PROCESS_COLUMNS = (
    Column("actor", "left", style="bold"),
    Column("node", "left", drop=6, prefix=True),
    Column("replica", drop=7, suffix=True),
    Column("datasets", "left", drop=8, wrap=True),
    Column("state", "left", drop=2),
    Column("pid", drop=12),
    Column("calls/s"),
    Column("calls", drop=7),
    Column("in-flight", drop=13),
    Column("queue", drop=5),
    Column("p50 ms", drop=11),
    Column("p99 ms", drop=3),
    Column("errors", drop=1),
    Column("restarts", drop=4),
    Column("last error", "left", drop=10),
    Column("memory", drop=9),
)


def processes_table(snapshot: Snapshot, max_width: int, view: ViewState | None = None) -> Table:
    """``mpreg top``: one row per actor replica and worker process, in the chosen order."""
    rows: list[list[Cell]] = [
        [
            e.label if e.kind == "actor" else f"({e.label})",
            e.node,
            f"{e.replica}/{e.replicas}" if e.replicas > 1 else "-",
            ", ".join(e.datasets) or "-",
            _state(e.state),
            str(e.pid or "-"),
            fmt_rate(e.calls_per_s),
            str(e.calls),
            str(e.in_flight),
            str(e.queued),
            fmt_ms(e.p50_ms),
            fmt_ms(e.p99_ms),
            _count(e.errors, alarm=True),
            _count(e.restarts, alarm=True),
            Text(_short(e.last_error), style="red" if e.last_error else "dim"),
            fmt_bytes(e.rss_bytes),
        ]
        for e in visible(snapshot.endpoints, view or ViewState())
    ]
    title = "Actors and workers"
    if view is not None and (view.sort or view.filter):
        title += f" (sorted by {view.sort_title}" + (
            f", filter {view.filter!r})" if view.filter else ")"
        )
    return fit_table(title, PROCESS_COLUMNS, rows, max_width)


ACTOR_COLUMNS = (
    Column("actor", "left", style="bold"),
    Column("node", "left", drop=3, prefix=True),
    Column("datasets", "left", drop=2),
    Column("functions", "left", wrap=True),
    Column("replicas", drop=4),
    Column("pids", "left", drop=6),
    Column("state", "left", drop=1),
    Column("calls", drop=3),
    Column("in-flight", drop=5),
)


def actors_table(snapshot: Snapshot, max_width: int) -> Table:
    """``mpreg status``: actors (and worker pools) grouped per class and node."""
    groups: dict[tuple[str, str, str], list[EndpointRow]] = {}
    for e in visible(snapshot.endpoints, ViewState()):
        groups.setdefault((e.kind, e.label, e.node), []).append(e)
    rows: list[list[Cell]] = []
    for (kind, label, node), members in groups.items():
        states = sorted({m.state for m in members})
        rows.append(
            [
                label if kind == "actor" else f"({label})",
                node,
                ", ".join(members[0].datasets) or "-",
                ", ".join(members[0].functions),
                str(len(members)),
                ", ".join(str(m.pid) for m in members if m.pid),
                _state(states[0]) if len(states) == 1 else ", ".join(states),
                str(sum(m.calls for m in members)),
                str(sum(m.in_flight for m in members)),
            ]
        )
    return fit_table("Actors and workers", ACTOR_COLUMNS, rows, max_width)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def header(snapshot: Snapshot, title: str) -> Text:
    """The first line: source, time, and what the cluster holds."""
    when = time.strftime("%H:%M:%S", time.localtime(snapshot.taken_at))
    nodes = len(snapshot.nodes)
    servers = sum(n.role == "SERVER" for n in snapshot.nodes)
    actors = sum(n.actors for n in snapshot.nodes)
    datasets = ", ".join(sorted({d for e in snapshot.endpoints for d in e.datasets})) or "-"
    text = Text(f"{title} ", style="bold")
    text.append(f"{snapshot.source}  {when}  ", style="dim")
    text.append(
        f"{_plural(nodes, 'node')} ({servers} SERVER, {nodes - servers} BALANCER), "
        f"{_plural(actors, 'actor')}, datasets: {datasets}"
    )
    return text


def summary(snapshot: Snapshot, history: History | None = None) -> Text:
    """The second line: member states, total calls/s (and its trend), error rate."""
    counts: dict[str, int] = {"alive": 0, "suspect": 0, "dead": 0}
    for node in snapshot.nodes:
        counts[node.state] = counts.get(node.state, 0) + 1
    text = Text("members: ")
    text.append_text(
        Text(", ").join(
            Text(f"{n} {state}", style=STATE_STYLES.get(state, "") if n else "dim")
            for state, n in counts.items()
        )
    )
    known = [n.calls_per_s for n in snapshot.nodes if n.calls_per_s is not None]
    calls = sum(known) if known else None
    errors = sum(n.errors_per_s or 0.0 for n in snapshot.nodes)
    text.append(f"   calls/s: {fmt_rate(calls)}")
    if history is not None and history.total:
        text.append(" " + sparkline(history.total, 20), style="cyan")
    rate = f"{100 * errors / calls:.1f}%" if calls else "-"
    text.append("   errors: ")
    text.append(rate, style="red" if errors else "")
    return text


def keys_help() -> Text:
    text = Text("keys\n", style="bold")
    for key, what in KEYS:
        text.append(f"  {key}  ", style="bold cyan")
        text.append(f"{what}\n")
    return text


def footer(view: ViewState | None) -> Text:
    """The last line: keys on a terminal; how to stop, in a pipe."""
    if view is None:
        return Text(PLAIN_FOOTER, style="dim")
    if view.prompt is not None:
        text = Text("filter: ", style="bold")
        text.append(view.prompt + "▏")
        text.append("   Enter applies, Esc clears", style="dim")
        return text
    text = Text(f"sort: {view.sort_title}", style="bold")
    if view.filter:
        text.append(f"   filter: {view.filter}", style="bold")
    text.append("   q quit  s sort  f filter  ? keys", style="dim")
    return text


@dataclass(frozen=True, slots=True)
class TopView:
    """The ``mpreg top`` frame, laid out for the width it is given.

    ``view`` is None for plain frames (a pipe, ``--once``): no keys to offer.
    """

    snapshot: Snapshot
    view: ViewState | None = None
    history: History | None = field(default=None, compare=False)

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> Iterator[RenderableType]:
        snap, width = self.snapshot, options.max_width
        yield header(snap, "mpreg top")
        yield summary(snap, self.history)
        if snap.error:
            yield Text(f"cluster unavailable: {snap.error} (retrying)", style="bold red")
        if self.view is not None and self.view.help:
            yield keys_help()
        if snap.nodes:
            yield nodes_table(snap, width, rates=True, history=self.history)
            yield processes_table(snap, width, self.view)
        yield footer(self.view)


@dataclass(frozen=True, slots=True)
class StatusView:
    """The ``mpreg status`` report, laid out for the width it is given."""

    snapshot: Snapshot

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> Iterator[RenderableType]:
        width = options.max_width
        yield Group(
            header(self.snapshot, "mpreg cluster"),
            nodes_table(self.snapshot, width, rates=False),
            actors_table(self.snapshot, width),
        )


def render_top(
    snapshot: Snapshot, view: ViewState | None = None, history: History | None = None
) -> RenderableType:
    """The ``mpreg top`` frame for ``snapshot`` (plain, without ``view``)."""
    return TopView(snapshot, view, history)


def render_status(snapshot: Snapshot) -> RenderableType:
    """The ``mpreg status`` report for ``snapshot``."""
    return StatusView(snapshot)
