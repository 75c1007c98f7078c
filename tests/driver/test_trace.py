"""A request's trace and progress, against two real nodes (tests/extras_support.py)."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from extras_support import TwoNodes, two_nodes

import mpreg
from mpreg import Command

pytestmark = pytest.mark.cluster

BRANCH = 0.4  # seconds each branch of the diamond runs

DIAMOND = [
    Command("top", "step", [0.05], []),
    Command("left", "step", [BRANCH, "top"], []),
    Command("right", "step", [BRANCH, "top"], []),
    Command("bottom", "step", [0.05, "left", "right"], []),
]


@pytest.fixture
def cluster() -> Iterator[TwoNodes]:
    yield from two_nodes()


@pytest.fixture
def connected(cluster: TwoNodes) -> Iterator[TwoNodes]:
    mpreg.init(cluster.address, token=cluster.token)
    try:
        deadline = time.monotonic() + 20
        # Node "a" must know node "b"'s worker before the branches can spread over both.
        while {n for f in mpreg.functions() if f.name == "step" for n in f.nodes} != {"a", "b"}:
            assert time.monotonic() < deadline, "node b's worker never showed up"
            time.sleep(0.05)  # ok-sleep: polling, bounded by a deadline
        yield cluster
    finally:
        mpreg.shutdown()


def _node_of_pid() -> dict[int, str]:
    status = mpreg.cluster_status(timeout=10)
    return {ep.pid: stats.node.name for stats in status.nodes for ep in stats.endpoints}


def test_a_diamond_trace_names_the_nodes_and_shows_the_branches_overlapping(
    connected: TwoNodes,
) -> None:
    results = mpreg.request(DIAMOND, trace=True, return_all=True, timeout=30)
    trace = results.trace  # type: ignore[attr-defined]
    assert mpreg.last_trace() is trace
    assert mpreg.last_placement() == {row.name: row.endpoint for row in trace.commands}
    assert [row.name for row in trace.commands] == ["top", "left", "right", "bottom"]
    nodes = _node_of_pid()
    for row in trace.commands:
        assert row.ok and row.retries == 0
        assert row.pid == results[row.name]["pid"]  # the process that really ran it
        assert row.node == nodes[row.pid]
        assert row.bytes_in > 0 and row.bytes_out > 0
    top, left, right, bottom = (trace.row(n) for n in ("top", "left", "right", "bottom"))
    # One worker per node, the two branches ready together: one on each node, at once.
    assert {left.node, right.node} == {"a", "b"}
    assert left.started < right.finished and right.started < left.finished
    assert trace.max_parallel == 2
    assert left.ready >= top.finished and bottom.ready >= max(left.finished, right.finished)
    assert left.run >= BRANCH and right.run >= BRANCH
    assert trace.critical_path in (("top", "left", "bottom"), ("top", "right", "bottom"))
    assert BRANCH < trace.wall < 2 * BRANCH + 5
    text, page = str(trace), trace._repr_html_()
    for name in ("top", "left", "right", "bottom", "a", "b"):
        assert name in text and name in page
    assert "<table>" in page and "critical path" in text


def test_an_untraced_request_has_no_trace(connected: TwoNodes) -> None:
    results = mpreg.request(DIAMOND, timeout=30)
    assert not hasattr(results, "trace")
    assert set(results) == {"bottom"}


def test_submit_request_reports_each_command_as_it_finishes(connected: TwoNodes) -> None:
    handle = mpreg.submit_request(DIAMOND, timeout=30)
    seen = list(handle.as_completed(timeout=30))
    names = [name for name, _ in seen]
    assert names[0] == "top" and names[-1] == "bottom"
    assert set(names[1:3]) == {"left", "right"}
    values = dict(seen)
    assert values["top"] is None  # an intermediate result stays in the cluster
    assert values["bottom"]["inputs"] == 2
    assert handle.done()
    results = handle.result(timeout=5)
    assert results == {"bottom": values["bottom"]}
    assert results.trace.max_parallel == 2
    assert handle.cancel() is False  # already finished


def test_a_cancelled_handle_settles_at_once(connected: TwoNodes) -> None:
    handle = mpreg.submit_request(
        [Command("long", "step", [2], []), Command("after", "step", [0, "long"], [])]
    )
    started = time.monotonic()
    assert not handle.done()
    assert handle.cancel() is True
    with pytest.raises(mpreg.TaskCancelled):
        handle.result(timeout=5)
    with pytest.raises(mpreg.TaskCancelled):
        list(handle.as_completed(timeout=5))
    assert handle.done() and handle.cancel() is False
    assert time.monotonic() - started < 1.5  # not after "long" ran its 2 s


def test_the_async_client_traces_and_streams_progress_too(cluster: TwoNodes) -> None:
    async def run() -> tuple[list[str], object, object]:
        async with mpreg.Client(cluster.address, token=cluster.token) as client:
            traced = await client.request(DIAMOND[:2], trace=True, timeout=30)
            handle = await client.submit_request(DIAMOND, timeout=30)
            names = [name async for name, _ in handle.as_completed()]
            return names, traced, await handle.result(5)

    names, traced, results = cluster.run(run())
    assert [row.name for row in traced.trace.commands] == ["top", "left"]  # type: ignore[attr-defined]
    assert traced.trace.critical_path == ("top", "left")  # type: ignore[attr-defined]
    assert names[0] == "top" and names[-1] == "bottom" and len(names) == 4
    assert set(results) == {"bottom"}  # type: ignore[call-overload]
