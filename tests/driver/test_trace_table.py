"""Trace and discovery from made-up records: the pure parts, no cluster."""

from __future__ import annotations

import io

from rich.console import Console

from mpreg.driver.discovery import DatasetInfo, FunctionInfo, datasets_of, functions_of
from mpreg.driver.trace import build_trace, places_of
from mpreg.protocol.codec import Blob
from mpreg.protocol.messages import (
    EndpointStats,
    NodeInfo,
    NodeStats,
    SubmitBatch,
    TaskSpec,
    TaskTrace,
)
from mpreg.status import ClusterStatus


def _spec(task_id: int, name: str, deps: tuple[int, ...] = ()) -> TaskSpec:
    return TaskSpec(task_id, name, "f", frozenset(), Blob([b""]), deps, want_result=False)


def _record(task_id: int, where: str, ready: float, sent: float, done: float) -> TaskTrace:
    return TaskTrace(task_id, where, ready, sent, done, 10, 20, 0, ok=True)


def _endpoint(endpoint_id: str, node_id: str, pid: int, *datasets: str) -> EndpointStats:
    return EndpointStats(
        endpoint_id, node_id, "worker", "", ("f", "g"), datasets, pid, "running", 0, 0, 0, 0, 0
    )


STATUS = ClusterStatus(
    (
        NodeStats(
            NodeInfo("a-1", "a", "127.0.0.1:1"),
            "alive",
            1,
            0,
            0,
            0,
            (_endpoint("a-1/w1", "a-1", 11, "x"), _endpoint("a-1/w2", "a-1", 12, "x")),
        ),
        NodeStats(
            NodeInfo("b-1", "b", "127.0.0.1:2"),
            "alive",
            2,
            0,
            0,
            0,
            (_endpoint("b-1/w1", "b-1", 21, "y"),),
        ),
    )
)

# top -> (left, right) -> bottom; right is the slower branch.
BATCH = SubmitBatch(
    1,
    (
        _spec(1, "top"),
        _spec(2, "left", (1,)),
        _spec(3, "right", (1,)),
        _spec(4, "bottom", (2, 3)),
    ),
)
RECORDS = {
    1: _record(1, "a-1/w1", 0.0, 0.001, 0.1),
    2: _record(2, "a-1/w2", 0.1, 0.101, 0.3),
    3: _record(3, "b-1/w1", 0.1, 0.102, 0.5),
    4: _record(4, "a-1/w1", 0.5, 0.52, 0.6),
}


def test_a_trace_has_places_critical_path_and_parallelism() -> None:
    trace = build_trace(BATCH, RECORDS, places_of(STATUS), wall=0.61)
    assert [(r.name, r.node, r.pid) for r in trace.commands] == [
        ("top", "a", 11),
        ("left", "a", 12),
        ("right", "b", 21),
        ("bottom", "a", 11),
    ]
    assert trace.critical_path == ("top", "right", "bottom")
    assert trace.max_parallel == 2
    bottom = trace.row("bottom")
    assert bottom.deps == ("left", "right")
    assert round(bottom.queue, 3) == 0.02 and round(bottom.run, 3) == 0.08


def test_commands_that_never_ran_are_left_out_and_unknown_endpoints_keep_their_node() -> None:
    trace = build_trace(BATCH, {1: _record(1, "c-9/w1", 0, 0.01, 0.02)}, {}, wall=0.1)
    assert [(r.name, r.node, r.pid) for r in trace.commands] == [("top", "c-9", 0)]
    assert trace.critical_path == ("top",) and trace.max_parallel == 1


def test_a_trace_renders_as_text_html_and_a_rich_table() -> None:
    trace = build_trace(BATCH, RECORDS, places_of(STATUS), wall=0.61)
    text = str(trace)
    assert text.splitlines()[0].split()[:3] == ["command", "node", "pid"]
    assert "* right" in text and "  left" in text  # the critical path is starred
    assert "critical path (*): top -> right -> bottom" in text
    page = trace._repr_html_()
    assert page.startswith("<table>") and page.count("<tr>") == 5
    out = io.StringIO()
    Console(file=out, width=160).print(trace)
    assert "bottom" in out.getvalue() and "at most 2 in parallel" in out.getvalue()


def test_functions_and_datasets_group_processes_by_datasets_and_node() -> None:
    assert functions_of(STATUS) == [
        FunctionInfo("f", ("x",), 2, ("a",)),
        FunctionInfo("f", ("y",), 1, ("b",)),
        FunctionInfo("g", ("x",), 2, ("a",)),
        FunctionInfo("g", ("y",), 1, ("b",)),
    ]
    assert datasets_of(STATUS) == [
        DatasetInfo("x", ("f", "g"), 2, ("a",)),
        DatasetInfo("y", ("f", "g"), 1, ("b",)),
    ]
    assert repr(functions_of(STATUS)[0]) == "<function f with x: 2 replicas on a>"
