"""A cluster snapshot reads well: HTML in a notebook, a rich table in a terminal, plain repr."""

from __future__ import annotations

import io

from rich.console import Console

from mpreg.protocol.messages import EndpointStats, NodeInfo, NodeStats
from mpreg.status import ClusterStatus


def endpoint(
    node_id: str,
    label: str,
    n: int,
    *,
    kind: str,
    datasets: tuple[str, ...],
    functions: tuple[str, ...],
    calls: int = 0,
) -> EndpointStats:
    return EndpointStats(
        endpoint_id=f"{node_id}/{label}-{n}",
        node_id=node_id,
        kind=kind,
        label=label,
        functions=functions,
        datasets=datasets,
        pid=1000 + n,
        state="running",
        in_flight=0,
        calls=calls,
        errors=0,
        restarts=0,
        rss_bytes=0,
    )


def cluster() -> ClusterStatus:
    head = NodeStats(
        node=NodeInfo("head-aaaaaa", "head", "127.0.0.1:7773", "SERVER"),
        state="alive",
        pid=4242,
        rss_bytes=0,
        calls=12,
        in_flight=1,
        endpoints=(
            endpoint(
                "head-aaaaaa",
                "IrisModel",
                0,
                kind="actor",
                datasets=("iris",),
                functions=("predict",),
                calls=5,
            ),
            endpoint(
                "head-aaaaaa",
                "IrisModel",
                1,
                kind="actor",
                datasets=("iris",),
                functions=("predict",),
                calls=7,
            ),
            endpoint(
                "head-aaaaaa", "functions", 0, kind="worker", datasets=(), functions=("echo",)
            ),
        ),
    )
    other = NodeStats(
        node=NodeInfo("gpu-bbbbbb", "gpu<1>", "127.0.0.1:7774", "SERVER"),
        state="alive",
        pid=4343,
        rss_bytes=0,
        calls=0,
        in_flight=0,
        endpoints=(
            endpoint(
                "gpu-bbbbbb",
                "WineModel",
                0,
                kind="actor",
                datasets=("wine",),
                functions=("predict", "score"),
            ),
        ),
    )
    return ClusterStatus((head, other))


def test_the_notebook_html_names_every_node_and_actor() -> None:
    page = cluster()._repr_html_()
    for text in ("head", "127.0.0.1:7773", "IrisModel", "WineModel", "iris", "wine", "score"):
        assert text in page
    assert "gpu&lt;1&gt;" in page  # names are escaped, never markup
    assert "gpu<1>" not in page
    assert "3 actor replicas" in page


def test_the_plain_repr_is_a_table_not_a_dataclass_dump() -> None:
    text = repr(cluster())
    assert text.startswith(
        "ClusterStatus: 2 nodes, 3 actor replicas, 1 worker; datasets: iris, wine"
    )
    assert "EndpointStats(" not in text
    iris = next(line for line in text.splitlines() if line.startswith("IrisModel"))
    assert iris.split()[:5] == ["IrisModel", "head", "iris", "predict", "2"]


def test_the_rich_rendering_fits_a_terminal() -> None:
    console = Console(width=100, file=io.StringIO(), color_system=None, record=True)
    console.print(cluster())
    out = console.export_text()
    assert "IrisModel" in out and "WineModel" in out and "127.0.0.1:7774" in out
    assert max(len(line) for line in out.splitlines()) <= 100


def test_an_empty_cluster_shows_its_nodes_and_no_actor_table() -> None:
    alone = ClusterStatus((NodeStats(cluster().nodes[0].node, "alive", 1, 0, 0, 0),))
    assert len(repr(alone).split("\n\n")) == 2  # the summary and the node table
    assert "datasets: none" in repr(alone)
