"""Drawing snapshots with rich: the ``mpreg top`` frame and the ``mpreg status`` report.

Tables fit the console: each column has a drop rank, and while a table would
be wider than the space it gets, columns go one at a time, highest rank
first (the pid before the address, never the calls/s or p99). Everything here is pure:
a snapshot in, renderables out, so it is tested at fixed console widths.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.table import Table
from rich.text import Text

from mpreg.dashboard.snapshot import EndpointRow, Snapshot

STATE_STYLES = {
    "alive": "green",
    "running": "green",
    "starting": "yellow",
    "restarting": "yellow",
    "crash-loop": "red",
    "unreachable": "red",
    "suspect": "yellow",
    "left": "dim",
    "failed": "red",
    "dead": "red",
}


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


def _state(state: str) -> Text:
    return Text(state, style=STATE_STYLES.get(state, ""))


def _count(n: int, *, alarm: bool = False) -> Text:
    return Text(str(n), style="red" if alarm and n else "")


# --- width-fitted tables ------------------------------------------------------------

Cell = str | Text


@dataclass(frozen=True, slots=True)
class Column:
    """A table column; ``drop`` 0 is always shown, higher ranks are dropped first.

    A ``prefix`` column, once dropped, lives on in front of the first column's
    cell (``head: London #3``) when its rows differ: it is what tells otherwise
    equal rows apart.
    """

    header: str
    justify: Literal["left", "right"] = "right"
    drop: int = 0
    style: str = ""
    prefix: bool = False


def _width(cell: Cell) -> int:
    return cell_len(cell.plain if isinstance(cell, Text) else cell)


def _plain(cell: Cell) -> str:
    return cell.plain if isinstance(cell, Text) else cell


def _first_cell(row: Sequence[Cell], prefixes: Sequence[int], shown: Sequence[int]) -> Cell:
    """The first column's cell, led by the cells of the dropped ``prefixes`` columns."""
    parts = [_plain(row[i]) for i in prefixes if i not in shown]
    if not parts:
        return row[0]
    # "node: name" breaks after the colon when the column is too narrow for both.
    cell = Text(" ".join(parts) + ": ")
    cell.append_text(row[0] if isinstance(row[0], Text) else Text(row[0]))
    return cell


def fit_table(
    title: str, columns: Sequence[Column], rows: Sequence[Sequence[Cell]], max_width: int
) -> Table:
    """A table of the columns that fit ``max_width`` (dropping by rank), cells unwrapped."""
    natural = [
        max([_width(c.header), *(_width(row[i]) for row in rows)]) for i, c in enumerate(columns)
    ]
    shown = list(range(len(columns)))
    # A prefix column whose rows all agree (a single node) tells no row apart.
    prefixes = [
        i for i, c in enumerate(columns) if c.prefix and len({_plain(r[i]) for r in rows}) > 1
    ]

    def width(indexes: list[int]) -> int:
        first = max([natural[0], *(_width(_first_cell(r, prefixes, indexes)) for r in rows)])
        # padding and borders
        return first + sum(natural[i] for i in indexes[1:]) + 3 * len(indexes) + 1

    # One column at a time: the highest rank first, the rightmost of a rank first.
    for i in sorted(
        (i for i, c in enumerate(columns) if c.drop), key=lambda i: (-columns[i].drop, -i)
    ):
        if width(shown) <= max_width:
            break
        shown.remove(i)
    table = Table(title=title, title_justify="left")
    for i in shown:
        col = columns[i]
        # The first column (a name) may fold if even the essentials do not fit.
        table.add_column(
            col.header,
            justify=col.justify,
            style=col.style,
            no_wrap=i != 0,
            overflow="fold" if i == 0 else "ellipsis",
            min_width=min(natural[i], 12) if i == 0 else None,
        )
    for row in rows:
        table.add_row(_first_cell(row, prefixes, shown), *(row[i] for i in shown[1:]))
    return table


NODE_COLUMNS = (
    Column("node", "left", style="bold"),
    Column("address", "left", drop=3),
    Column("role", "left", drop=2),
    Column("state", "left"),
    Column("pid", drop=5),
    Column("actors", drop=4),
    Column("calls/s"),
    Column("calls", drop=4),
    Column("in-flight"),
    Column("p50 ms", drop=1),
    Column("p99 ms"),
    Column("errors"),
    Column("restarts", drop=1),
    Column("memory"),
)


def nodes_table(snapshot: Snapshot, max_width: int, *, rates: bool) -> Table:
    """One row per node: role, state, its processes and their load."""
    columns = [c for c in NODE_COLUMNS if rates or c.header != "calls/s"]
    rows: list[list[Cell]] = []
    for n in snapshot.nodes:
        row: list[Cell] = [n.name, n.address, n.role, _state(n.state), str(n.pid or "-")]
        row.append(f"{n.actors}+{n.workers}w")
        if rates:
            row.append(fmt_rate(n.calls_per_s))
        row += [str(n.calls), str(n.in_flight), fmt_ms(n.p50_ms), fmt_ms(n.p99_ms)]
        row += [
            _count(n.errors, alarm=True),
            _count(n.restarts, alarm=True),
            fmt_bytes(n.rss_bytes),
        ]
        rows.append(row)
    return fit_table("Nodes", columns, rows, max_width)


PROCESS_COLUMNS = (
    Column("process", "left", style="bold"),
    Column("node", "left", drop=2, prefix=True),
    Column("datasets", "left", drop=2),
    Column("state", "left"),
    Column("pid", drop=3),
    Column("calls/s"),
    Column("in-flight"),
    Column("p50 ms", drop=1),
    Column("p99 ms"),
    Column("errors"),
    Column("restarts", drop=1),
    Column("memory"),
)


def processes_table(snapshot: Snapshot, max_width: int) -> Table:
    """``mpreg top``: one row per actor replica and worker process, actors first."""
    rows: list[list[Cell]] = [
        [
            _process_name(e),
            e.node,
            ", ".join(e.datasets) or "-",
            _state(e.state),
            str(e.pid or "-"),
            fmt_rate(e.calls_per_s),
            str(e.in_flight),
            fmt_ms(e.p50_ms),
            fmt_ms(e.p99_ms),
            _count(e.errors, alarm=True),
            _count(e.restarts, alarm=True),
            fmt_bytes(e.rss_bytes),
        ]
        for e in _ordered(snapshot.endpoints)
    ]
    return fit_table("Actors and workers", PROCESS_COLUMNS, rows, max_width)


ACTOR_COLUMNS = (
    Column("actor", "left", style="bold"),
    Column("node", "left"),
    Column("datasets", "left"),
    Column("functions", "left", drop=2),
    Column("replicas", drop=1),
    Column("pids", "left", drop=3),
    Column("state", "left"),
    Column("calls", drop=1),
    Column("in-flight", drop=1),
)


def actors_table(snapshot: Snapshot, max_width: int) -> Table:
    """``mpreg status``: actors (and worker pools) grouped per class and node."""
    groups: dict[tuple[str, str, str], list[EndpointRow]] = {}
    for e in _ordered(snapshot.endpoints):
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


def _ordered(rows: Sequence[EndpointRow]) -> list[EndpointRow]:
    return sorted(rows, key=lambda e: (e.kind != "actor", e.label, e.node, e.endpoint_id))


def _process_name(e: EndpointRow) -> str:
    suffix = e.endpoint_id.rpartition("-")[2]
    base = e.label if e.kind == "actor" else f"({e.label})"
    return f"{base} #{suffix}" if suffix.isdigit() else base


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


@dataclass(frozen=True, slots=True)
class TopView:
    """The ``mpreg top`` frame, laid out for the width it is given."""

    snapshot: Snapshot

    def __rich_console__(
        self, console: Console, options: ConsoleOptions
    ) -> Iterator[RenderableType]:
        snap, width = self.snapshot, options.max_width
        yield header(snap, "mpreg top")
        if snap.error:
            yield Text(f"cluster unavailable: {snap.error} (retrying)", style="bold red")
        if snap.nodes:
            yield nodes_table(snap, width, rates=True)
            yield processes_table(snap, width)
        yield Text(
            "calls/s over the last interval; p50/p99 over recent calls. Ctrl-C quits.", style="dim"
        )


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


def render_top(snapshot: Snapshot) -> RenderableType:
    """The ``mpreg top`` frame for ``snapshot``."""
    return TopView(snapshot)


def render_status(snapshot: Snapshot) -> RenderableType:
    """The ``mpreg status`` report for ``snapshot``."""
    return StatusView(snapshot)
