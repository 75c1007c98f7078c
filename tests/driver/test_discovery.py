"""``mpreg.call``, ``functions()`` and ``datasets()`` against two real nodes."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from extras_support import TwoNodes, two_nodes

import mpreg
from mpreg import DatasetInfo, FunctionInfo

pytestmark = pytest.mark.cluster


@pytest.fixture
def connected() -> Iterator[TwoNodes]:
    for cluster in two_nodes():
        mpreg.init(cluster.address, token=cluster.token)
        try:
            deadline = time.monotonic() + 20
            while len({f.nodes for f in mpreg.functions() if f.name == "step"}) < 2:
                assert time.monotonic() < deadline, "node b's worker never showed up"
                time.sleep(0.05)  # ok-sleep: polling, bounded by a deadline
            yield cluster
        finally:
            mpreg.shutdown()


def test_call_runs_one_function_where_its_dataset_is(connected: TwoNodes) -> None:
    pids = {ep.datasets: ep.pid for ep in mpreg.cluster_status(timeout=10).endpoints if ep.datasets}
    assert mpreg.call("step", 0, datasets=["alpha"])["pid"] == pids[("alpha",)]
    assert mpreg.call("step", 0, datasets=("beta",), timeout=10)["pid"] == pids[("beta",)]


def test_call_keeps_its_own_options_apart_from_the_functions_keywords(
    connected: TwoNodes,
) -> None:
    assert mpreg.call("options", 1) == {"value": 1, "timeout": None, "datasets": None}
    # timeout= and datasets= are mpreg's; the function's own go in kwargs=.
    got = mpreg.call(
        "options", datasets=["beta"], timeout=10, kwargs={"timeout": 3, "datasets": "x"}, value=2
    )
    assert got == {"value": 2, "timeout": 3, "datasets": "x"}
    with pytest.raises(TypeError, match="value"):
        mpreg.call("options", kwargs={"value": 1}, value=2)
    with pytest.raises(mpreg.RemoteError):
        mpreg.call("options", nonsense=1)  # an unknown keyword reaches the function


def test_functions_and_datasets_list_what_each_node_serves(connected: TwoNodes) -> None:
    functions = mpreg.functions()
    assert FunctionInfo("step", ("alpha",), 1, ("a",)) in functions
    assert FunctionInfo("step", ("beta",), 1, ("b",)) in functions
    assert FunctionInfo("options", ("beta",), 1, ("b",)) in functions
    assert "step with alpha: 1 replica on a" in repr(functions)
    datasets = {d.name: d for d in mpreg.datasets()}
    alpha = datasets["alpha"]
    assert {"options", "step"} <= set(alpha.functions)  # with the built-in echo, echos
    assert (alpha.replicas, alpha.nodes) == (1, ("a",))
    assert isinstance(alpha, DatasetInfo)
    assert datasets["beta"].nodes == ("b",)
    assert "<dataset beta: 1 replica on b" in repr(datasets["beta"])
