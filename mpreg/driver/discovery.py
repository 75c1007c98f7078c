"""What the cluster serves: ``mpreg.functions()``, ``mpreg.datasets()``, ``mpreg call --list``.

Read from one cluster status: every process (actor replica or function
worker) says which functions it serves and which datasets it holds. A
function served with different datasets by different processes is listed
once per set of datasets, since a call names the datasets it needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mpreg.status import ClusterStatus


@dataclass(frozen=True, slots=True)
class FunctionInfo:
    """A function, the datasets its processes hold, how many processes serve it, on which nodes."""

    name: str
    datasets: tuple[str, ...]
    replicas: int
    nodes: tuple[str, ...]

    def __repr__(self) -> str:
        where = f" with {', '.join(self.datasets)}" if self.datasets else ""
        return f"<function {self.name}{where}: {_replicas(self.replicas)} on {_list(self.nodes)}>"


@dataclass(frozen=True, slots=True)
class DatasetInfo:
    """A dataset, the functions that run where it is, how many processes hold it, on which nodes."""

    name: str
    functions: tuple[str, ...]
    replicas: int
    nodes: tuple[str, ...]

    def __repr__(self) -> str:
        return (
            f"<dataset {self.name}: {_replicas(self.replicas)} on {_list(self.nodes)}, "
            f"serving {_list(self.functions)}>"
        )


def _replicas(n: int) -> str:
    return f"{n} replica{'s' if n != 1 else ''}"


def _list(names: Sequence[str]) -> str:
    return ", ".join(names) or "-"


def _live(status: ClusterStatus) -> list[tuple[str, Any]]:
    """(node name, endpoint) for every process of a live node that is not dead."""
    return [
        (stats.node.name, ep)
        for stats in status.nodes
        if stats.state not in ("dead", "left")
        for ep in stats.endpoints
        if ep.state not in ("dead", "failed")
    ]


def functions_of(status: ClusterStatus) -> list[FunctionInfo]:
    """One entry per function and set of datasets, sorted by name."""
    found: dict[tuple[str, tuple[str, ...]], tuple[int, set[str]]] = {}
    for node, ep in _live(status):
        datasets = tuple(sorted(ep.datasets))
        for fun in ep.functions:
            count, nodes = found.get((fun, datasets), (0, set()))
            nodes.add(node)
            found[fun, datasets] = (count + 1, nodes)
    return [
        FunctionInfo(fun, datasets, count, tuple(sorted(nodes)))
        for (fun, datasets), (count, nodes) in sorted(found.items())
    ]


def datasets_of(status: ClusterStatus) -> list[DatasetInfo]:
    """One entry per dataset, sorted by name."""
    found: dict[str, tuple[int, set[str], set[str]]] = {}
    for node, ep in _live(status):
        for name in ep.datasets:
            count, nodes, funs = found.get(name, (0, set(), set()))
            nodes.add(node)
            funs.update(ep.functions)
            found[name] = (count + 1, nodes, funs)
    return [
        DatasetInfo(name, tuple(sorted(funs)), count, tuple(sorted(nodes)))
        for name, (count, nodes, funs) in sorted(found.items())
    ]


def listing_table(status: ClusterStatus) -> Any:
    """The functions as a rich Table (what ``mpreg call --list`` prints)."""
    from rich.table import Table

    table = Table(title="functions the cluster serves")
    for column in ("function", "datasets", "replicas", "nodes"):
        table.add_column(column, justify="right" if column == "replicas" else "left")
    for info in functions_of(status):
        table.add_row(info.name, _list(info.datasets), str(info.replicas), _list(info.nodes))
    return table
