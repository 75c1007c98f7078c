"""Dashboard snapshots (pure) and their drawing at fixed console widths."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from mpreg.dashboard import (
    Snapshot,
    build_snapshot,
    fmt_bytes,
    fmt_ms,
    fmt_rate,
    render_status,
    render_top,
)
from mpreg.protocol.messages import EndpointStats, NodeInfo, NodeStats
from mpreg.status import ClusterStatus

MiB = 1 << 20


def endpoint(node_id: str, label: str, n: int, **fields: Any) -> EndpointStats:
    values: dict[str, Any] = {
        "endpoint_id": f"{node_id}/{label}-{n}",
        "node_id": node_id,
        "kind": "actor",
        "label": label,
        "functions": ("predict", "summary"),
        "datasets": (label.lower(),),
        "pid": 1000 + n,
        "state": "running",
        "in_flight": 0,
        "calls": 0,
        "errors": 0,
        "restarts": 0,
        "rss_bytes": 30 * MiB,
    }
    values.update(fields)
    return EndpointStats(**values)


def cluster(london_calls: int, worker_calls: int, *, restarts: int = 0) -> ClusterStatus:
    head = NodeStats(
        node=NodeInfo("head-aaaaaa", "head", "127.0.0.1:7773", "SERVER"),
        state="alive",
        pid=100,
        rss_bytes=40 * MiB,
        calls=london_calls + worker_calls,
        in_flight=3,
        endpoints=(
            endpoint(
                "head-aaaaaa",
                "London",
                3,
                calls=london_calls,
                in_flight=2,
                p50_ms=0.5,
                p99_ms=4.0,
                errors=1,
                restarts=restarts,
            ),
            endpoint(
                "head-aaaaaa",
                "functions",
                1,
                kind="worker",
                datasets=(),
                functions=("echo", "echos"),
                calls=worker_calls,
                in_flight=1,
                p50_ms=0.2,
                p99_ms=12.5,
            ),
        ),
    )
    balancer = NodeStats(
        node=NodeInfo("lb-bbbbbb", "balancer", "127.0.0.1:7774", "BALANCER"),
        state="unreachable",
        pid=0,
        rss_bytes=0,
        calls=0,
        in_flight=0,
    )
    return ClusterStatus((head, balancer))


def draw(renderable: object, width: int) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, record=True)
    console.print(renderable)
    return console.export_text()


def test_the_first_snapshot_has_no_rates_and_the_next_measures_them() -> None:
    first = build_snapshot(cluster(100, 50), source="127.0.0.1:7773", now=1000.0)
    assert [e.calls_per_s for e in first.endpoints] == [None, None]
    assert first.nodes[0].calls_per_s is None
    second = build_snapshot(cluster(300, 60), source="x", now=1002.0, previous=first)
    assert [e.calls_per_s for e in second.endpoints] == [100.0, 5.0]
    head = second.nodes[0]
    assert head.calls_per_s == 105.0
    assert (head.calls, head.in_flight, head.errors) == (360, 3, 1)
    assert (head.actors, head.workers) == (1, 1)
    assert head.rss_bytes == 100 * MiB  # the node and its two processes
    assert head.p99_ms == 12.5  # the worst process
    assert head.p50_ms == 0.5  # calls-weighted: London served most calls


def test_a_counter_that_went_backwards_is_not_a_negative_rate() -> None:
    first = build_snapshot(cluster(100, 50), source="x", now=10.0)
    second = build_snapshot(cluster(20, 50), source="x", now=11.0, previous=first)
    assert second.endpoints[0].calls_per_s == 0.0


def test_formatting_helpers() -> None:
    assert fmt_bytes(0) == "-"
    assert fmt_bytes(30 * MiB) == "30.0 MiB"
    assert fmt_bytes(3 << 30) == "3.0 GiB"
    assert fmt_ms(0) == "-"
    assert fmt_ms(0.25) == "0.25"
    assert fmt_ms(42.44) == "42.4"
    assert fmt_ms(420.4) == "420"
    assert fmt_rate(None) == "…"
    assert fmt_rate(2.5) == "2.5"
    assert fmt_rate(1234.4) == "1234"


@pytest.mark.parametrize("width", [80, 100, 120, 160])
def test_top_fits_the_console_width_keeping_the_key_figures(width: int) -> None:
    first = build_snapshot(cluster(100, 50, restarts=2), source="127.0.0.1:7773", now=1000.0)
    snapshot = build_snapshot(
        cluster(300, 60, restarts=2), source="127.0.0.1:7773", now=1002.0, previous=first
    )
    text = draw(render_top(snapshot), width)
    assert all(len(line) <= width for line in text.splitlines())
    flat = " ".join(text.split())
    for needle in ("mpreg top", "2 nodes (1 SERVER, 1 BALANCER)", "datasets: london"):
        assert needle in flat
    # Never dropped at 80 columns and up: names, state, calls/s, p99, errors.
    for needle in ("calls/s", "p99 ms", "errors", "London", "(functions)", "unreachable"):
        assert needle in flat
    for needle in ("12.5", "105", "1 alive, 0 suspect, 0 dead, 1 unreachable"):
        assert needle in flat
    assert ("100.0 MiB" in flat) == (width >= 80)
    assert ("restarts" in flat) == (width >= 80)
    assert ("127.0.0.1:7774" in flat) == (width >= 160)  # the widest, so it goes early


def two_servers() -> ClusterStatus:
    """Two nodes, each with a London replica #1 and a worker #1: equal but for the node."""

    def server(node_id: str, name: str, port: int, calls: int) -> NodeStats:
        return NodeStats(
            node=NodeInfo(node_id, name, f"127.0.0.1:{port}", "SERVER"),
            state="alive",
            pid=port,
            rss_bytes=40 * MiB,
            calls=calls,
            in_flight=0,
            endpoints=(
                endpoint(node_id, "London", 1, calls=calls, p50_ms=0.5, p99_ms=4.0),
                endpoint(node_id, "functions", 1, kind="worker", datasets=(), calls=calls),
            ),
        )

    return ClusterStatus(
        (server("head-aaaaaa", "head", 7773, 10), server("east-bbbbbb", "east", 7774, 20))
    )


def process_rows(text: str) -> list[str]:
    """The first cell of each row of the processes table, lines of a folded cell joined."""
    table = text[text.index("Actors and workers") :]
    cells: list[str] = []
    for line in table.splitlines():
        if not line.startswith("│"):
            continue
        first = line.split("│")[1].strip()
        state = line.split("│")[2].strip()
        if state:
            cells.append(first)
        elif first:  # the continuation of a folded name
            cells[-1] = f"{cells[-1]} {first}"
    return cells


@pytest.mark.parametrize("width", [50, 60])
def test_top_tells_the_nodes_apart_when_the_node_column_is_dropped(width: int) -> None:
    snapshot = build_snapshot(two_servers(), source="127.0.0.1:7773", now=0.0)
    text = draw(render_top(snapshot), width)
    assert all(len(line) <= width for line in text.splitlines())
    assert sorted(process_rows(text)) == [
        "east: (functions)",
        "east: London",
        "head: (functions)",
        "head: London",
    ]


def test_top_adds_no_node_prefix_when_one_node_hosts_every_process() -> None:
    snapshot = build_snapshot(cluster(5, 5), source="127.0.0.1:7773", now=0.0)
    assert process_rows(draw(render_top(snapshot), 80)) == ["London", "(functions)"]


def test_top_keeps_the_node_column_when_it_fits() -> None:
    snapshot = build_snapshot(two_servers(), source="127.0.0.1:7773", now=0.0)
    text = draw(render_top(snapshot), 160)
    assert sorted(process_rows(text)) == ["(functions)", "(functions)", "London", "London"]
    rows = [line for line in text.splitlines() if "(functions)" in line]
    assert [row.split("│")[2].strip() for row in rows] == ["east", "head"]


def test_top_at_200_columns_shows_every_column() -> None:
    first = build_snapshot(cluster(100, 50), source="127.0.0.1:7773", now=0.0)
    snapshot = build_snapshot(cluster(300, 60), source="127.0.0.1:7773", now=2.0, previous=first)
    rows = [line for line in draw(render_top(snapshot), 200).splitlines() if "London" in line]
    assert len(rows) == 1
    cells = [c.strip() for c in rows[0].split("│")[1:-1]]
    assert cells == [
        "London",
        "head",
        "-",  # one replica: no number that could be mistaken for one
        "london",
        "running",
        "1003",
        "100",
        "300",
        "2",  # in flight
        "0",  # waiting on the node for a slot
        "0.50",
        "4.00",
        "1",
        "0",
        "-",
        "30.0 MiB",
    ]


def test_an_unavailable_cluster_is_shown_not_raised() -> None:
    last = build_snapshot(cluster(1, 1), source="127.0.0.1:7773", now=0.0)
    failed = Snapshot(last.source, 1.0, last.nodes, last.endpoints, error="connection refused")
    text = draw(render_top(failed), 100)
    assert "cluster unavailable: connection refused (retrying)" in " ".join(text.split())
    empty = draw(render_top(Snapshot("127.0.0.1:1", 0.0, error="refused")), 60)
    assert "0 nodes" in empty
    assert "1 node (1 SERVER, 0 BALANCER), 1 actor," in " ".join(
        draw(render_top(Snapshot("x", 0.0, last.nodes[:1], last.endpoints[:1])), 200).split()
    )


def test_status_groups_replicas_per_actor_and_node() -> None:
    status = cluster(5, 5)
    head = status.nodes[0]
    extra = endpoint("head-aaaaaa", "London", 4, pid=2004, calls=7)
    status = ClusterStatus(
        (NodeStats(**{**_fields(head), "endpoints": (*head.endpoints, extra)}), status.nodes[1])
    )
    text = draw(render_status(build_snapshot(status, source="127.0.0.1:7773", now=0.0)), 140)
    london = [line for line in text.splitlines() if "London" in line]
    assert len(london) == 1
    cells = [c.strip() for c in london[0].split("│")[1:-1]]
    assert cells[:2] == ["London", "head"]
    assert cells[4:] == ["2", "1003, 2004", "running", "12", "2"]
    assert "(functions)" in text
    assert "calls/s" not in text


def _fields(stats: NodeStats) -> dict[str, Any]:
    return {name: getattr(stats, name) for name in NodeStats.__dataclass_fields__}


def test_a_function_worker_not_started_yet_shows_idle_without_a_pid() -> None:
    status = cluster(5, 0)
    head = status.nodes[0]
    idle = endpoint(
        "head-aaaaaa",
        "functions",
        2,
        kind="worker",
        datasets=(),
        functions=("echo", "echos"),
        pid=0,
        state="idle",
        rss_bytes=0,
    )
    status = ClusterStatus(
        (NodeStats(**{**_fields(head), "endpoints": (*head.endpoints, idle)}), status.nodes[1])
    )
    snapshot = build_snapshot(status, source="127.0.0.1:7773", now=0.0)
    workers = [
        line for line in draw(render_status(snapshot), 140).splitlines() if "(functions)" in line
    ]
    cells = [c.strip() for c in workers[0].split("│")[1:-1]]
    assert cells[4:7] == ["2", "1001", "idle, running"]  # two workers: one idle, no pid
    top = [line for line in draw(render_top(snapshot), 200).splitlines() if "(functions)" in line]
    assert len(top) == 2 and any(" idle " in line and " - " in line for line in top)
