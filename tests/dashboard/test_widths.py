"""A recorded cluster snapshot drawn at 60, 80, 120 and 200 columns: no row loses its name."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from mpreg.dashboard import History, Snapshot, ViewState, build_snapshot, render_status, render_top
from mpreg.protocol.messages import EndpointStats, NodeInfo, NodeStats
from mpreg.status import ClusterStatus

RECORDED = Path(__file__).with_name("recorded_status.json")
WIDTHS = [60, 80, 120, 200]


def _known(cls: type, fields: dict[str, Any]) -> dict[str, Any]:
    """The fields ``cls`` has (a recording stays readable as fields are added)."""
    return {k: v for k, v in fields.items() if k in cls.__dataclass_fields__}


def _status(document: dict[str, Any]) -> ClusterStatus:
    nodes = []
    for node in document["nodes"]:
        endpoints = tuple(
            EndpointStats(
                **_known(
                    EndpointStats,
                    {**ep, "functions": tuple(ep["functions"]), "datasets": tuple(ep["datasets"])},
                )
            )
            for ep in node["endpoints"]
        )
        fields = {**node, "node": NodeInfo(**node["node"]), "endpoints": endpoints}
        nodes.append(NodeStats(**_known(NodeStats, fields)))
    return ClusterStatus(tuple(nodes))


def recorded() -> tuple[Snapshot, History]:
    """The second recorded sample, with rates measured against the first."""
    data = json.loads(RECORDED.read_text())
    history = History()
    snapshot: Snapshot | None = None
    for when, document in zip(data["taken_at"], data["samples"], strict=True):
        snapshot = build_snapshot(
            _status(document), source="127.0.0.1:7773", now=when, previous=snapshot
        )
        history.add(snapshot)
    assert snapshot is not None
    return snapshot, history


def draw(renderable: object, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, record=True)
    console.print(renderable)
    return console.export_text()


def table_rows(text: str, title: str) -> list[list[str]]:
    """The cells of each row of the table titled ``title``, folded names joined."""
    rows: list[list[str]] = []
    for line in text[text.index(title) :].splitlines()[4:]:
        if not line.startswith("│"):
            break
        cells = [c.strip() for c in line.split("│")[1:-1]]
        if cells[-1]:
            rows.append(cells)
        else:  # a wrapped row goes on (rich drops the space where it breaks a name)
            rows[-1][0] += cells[0]
    return rows


# With the node and replica columns dropped, they lead and follow the name.
ACTOR_NAMES = {
    "head:Cairo",
    "head:WeatherForecastModel",
    "head:(functions)",
    "east-worker-with-a-long-name:Sydney1/2",
    "east-worker-with-a-long-name:Sydney2/2",
}


@pytest.mark.parametrize("view", [None, ViewState()], ids=["plain", "live"])
@pytest.mark.parametrize("width", WIDTHS)
def test_every_row_of_top_keeps_its_name_and_the_key_figures(
    width: int, view: ViewState | None
) -> None:
    snapshot, history = recorded()
    text = draw(render_top(snapshot, view, history), width)
    assert all(len(line) <= width for line in text.splitlines())
    nodes = table_rows(text, "Nodes")
    assert [row[0] for row in nodes] == ["head", "east-worker-with-a-long-name", "lost"]
    assert all(row[1] for row in nodes)  # no row reads "││ alive │"
    actors = table_rows(text, "Actors and workers")
    names = {row[0].replace(" ", "") for row in actors}
    if width >= 120:  # the node column fits: the name needs no prefix
        assert names == {"Cairo", "WeatherForecastModel", "(functions)"} | (
            {"Sydney"} if width >= 200 else {"Sydney1/2", "Sydney2/2"}
        )
    else:
        assert names == ACTOR_NAMES
    flat = " ".join(text.split())
    # Cairo: 240 calls in the last second, 37 errors in all; 1 alive, 1 suspect, 1 dead.
    assert "1 alive, 1 suspect, 1 dead" in flat
    assert "calls/s: 370" in flat
    cairo = next(row for row in actors if row[0].endswith("Cairo"))
    assert "240" in cairo and "37" in cairo
    for needle in ("calls/s", "errors", "suspect", "dead"):
        assert needle in flat
    if width >= 80:
        assert "3.90" in cairo  # its p99
    if width >= 200:
        for needle in ("1240", "ImportError: No module named …", "forecast-asia"):
            assert needle in flat


@pytest.mark.parametrize("width", WIDTHS)
def test_every_row_of_status_keeps_its_name_and_the_functions(width: int) -> None:
    snapshot, _ = recorded()
    text = draw(render_status(snapshot), width)
    assert all(len(line) <= width for line in text.splitlines())
    actors = table_rows(text, "Actors and workers")
    names = sorted(row[0].rpartition(": ")[2] for row in actors)
    assert names == ["(functions)", "Cairo", "Sydney", "WeatherForecastModel"]
    # The functions column is never dropped (it wraps instead).
    flat = " ".join(text.split())
    header = text[text.index("Actors and workers") :]
    assert "functions" in header.splitlines()[2]
    for function in ("predict", "summary", "echo", "shout"):
        assert function in flat
