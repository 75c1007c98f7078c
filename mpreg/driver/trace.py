"""A request's trace: where and how long each command ran, and what that made of the request.

Built in the driver from the cluster's own records (:class:`TaskTrace`, one
per task of a traced batch, timed on the clock of the node that ran the
request) and the cluster status (which node and process each endpoint is).
``str(trace)`` is a table for a terminal (``rich`` renders it via
``__rich__``), ``_repr_html_`` an HTML table for a notebook.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from mpreg.protocol.messages import SubmitBatch, TaskTrace
from mpreg.status import ClusterStatus


@dataclass(frozen=True, slots=True)
class TraceRow:
    """One command of a traced request.

    ``ready``, ``started`` and ``finished`` are seconds since the node took
    the request: its dependencies were done, it was handed to its process,
    its answer came back. ``queue`` is ``started - ready`` (waiting for a free
    process), ``run`` is ``finished - started`` (in its process, transfer
    included). ``bytes_in``: its arguments and dependency results;
    ``bytes_out``: its result. ``retries``: calls repeated because a process died.
    """

    name: str
    fun: str
    endpoint: str
    node: str
    pid: int
    ready: float
    started: float
    finished: float
    bytes_in: int
    bytes_out: int
    retries: int
    ok: bool
    deps: tuple[str, ...] = ()

    @property
    def queue(self) -> float:
        return max(0.0, self.started - self.ready) if self.started else 0.0

    @property
    def run(self) -> float:
        return max(0.0, self.finished - self.started) if self.started else 0.0


@dataclass(frozen=True, slots=True)
class Trace:
    """How one request ran: ``commands`` (rows in command order), ``wall`` (seconds the
    driver waited), ``critical_path`` (the chain of command names that set the
    finishing time) and ``max_parallel`` (the most commands running at once)."""

    commands: tuple[TraceRow, ...]
    wall: float
    critical_path: tuple[str, ...]
    max_parallel: int

    def row(self, name: str) -> TraceRow:
        for row in self.commands:
            if row.name == name:
                return row
        raise KeyError(name)

    def table(self) -> list[list[str]]:
        """Header and one line per command, as text (what both renderings show)."""
        lines = [list(_HEADER)]
        on_path = set(self.critical_path)
        for r in self.commands:
            lines.append(
                [
                    ("* " if r.name in on_path else "  ") + r.name,
                    r.node,
                    str(r.pid or ""),
                    _ms(r.ready),
                    _ms(r.queue),
                    _ms(r.run),
                    _ms(r.finished),
                    _size(r.bytes_in),
                    _size(r.bytes_out),
                    str(r.retries),
                    "ok" if r.ok else "failed",
                ]
            )
        return lines

    def summary(self) -> str:
        path = " -> ".join(self.critical_path) or "-"
        return (
            f"wall {self.wall * 1e3:.1f} ms, {len(self.commands)} commands, "
            f"at most {self.max_parallel} in parallel; critical path (*): {path}"
        )

    def __str__(self) -> str:
        lines = self.table()
        widths = [max(len(line[i]) for line in lines) for i in range(len(_HEADER))]
        text = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)) for line in lines]
        return "\n".join([*text, self.summary()])

    def __rich__(self) -> Any:
        from rich.table import Table

        lines = self.table()
        table = Table(title="mpreg request trace", caption=self.summary())
        for title in lines[0]:
            numeric = title not in ("command", "node", "status")
            table.add_column(title, justify="right" if numeric else "left")
        for line in lines[1:]:
            table.add_row(*line)
        return table

    def _repr_html_(self) -> str:
        lines = self.table()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in lines[0])
        body = "".join(
            "<tr>" + "".join(f"<td>{html.escape(c.strip())}</td>" for c in line) + "</tr>"
            for line in lines[1:]
        )
        return (
            f"<table><caption>{html.escape(self.summary())}</caption>"
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
        )


_HEADER = (
    "command",
    "node",
    "pid",
    "ready ms",
    "queue ms",
    "run ms",
    "done ms",
    "in",
    "out",
    "retries",
    "status",
)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n:.1f} GiB"


def build_trace(
    batch: SubmitBatch,
    records: Mapping[int, TaskTrace],
    places: Mapping[str, tuple[str, int]],
    wall: float,
) -> Trace:
    """A Trace of ``batch`` from its tasks' records; ``places``: endpoint id -> (node name, pid)."""
    names = {spec.task_id: spec.name for spec in batch.tasks}
    rows: list[TraceRow] = []
    for spec in batch.tasks:
        record = records.get(spec.task_id)
        if record is None:
            continue  # it never ran (a dependency failed, or the request was cut short)
        node, pid = places.get(record.where, (_node_of(record.where), 0))
        rows.append(
            TraceRow(
                name=spec.name,
                fun=spec.fun,
                endpoint=record.where,
                node=node,
                pid=pid,
                ready=record.ready,
                started=record.sent,
                finished=record.finished,
                bytes_in=record.bytes_in,
                bytes_out=record.bytes_out,
                retries=record.retries,
                ok=record.ok,
                deps=tuple(names[d] for d in spec.deps if d in names),
            )
        )
    return Trace(tuple(rows), wall, critical_path(rows), max_parallel(rows))


def _node_of(endpoint_id: str) -> str:
    return endpoint_id.partition("/")[0]


def critical_path(rows: Sequence[TraceRow]) -> tuple[str, ...]:
    """From the last command to finish back through the dependency that finished last.

    Each command could start only when its last dependency finished: that
    dependency gated it, so the chain of gating commands is what set the
    request's finishing time.
    """
    by_name = {row.name: row for row in rows}
    if not by_name:
        return ()
    current: TraceRow | None = max(rows, key=lambda r: r.finished)
    path: list[str] = []
    while current is not None:
        path.append(current.name)
        deps = [by_name[d] for d in current.deps if d in by_name]
        current = max(deps, key=lambda r: r.finished) if deps else None
    return tuple(reversed(path))


def max_parallel(rows: Sequence[TraceRow]) -> int:
    """The most commands that were in their processes at the same moment."""
    edges: list[tuple[float, int]] = []
    for row in rows:
        if row.started:
            edges.append((row.started, 1))
            edges.append((row.finished, -1))
    edges.sort()  # at a tie an end (-1) sorts first: touching intervals do not overlap
    running = most = 0
    for _, step in edges:
        running += step
        most = max(most, running)
    return most


def places_of(status: ClusterStatus) -> dict[str, tuple[str, int]]:
    """Endpoint id -> (node name, pid), from a cluster status."""
    return {
        ep.endpoint_id: (stats.node.name, ep.pid)
        for stats in status.nodes
        for ep in stats.endpoints
    }
