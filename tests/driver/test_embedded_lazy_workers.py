"""The embedded cluster starts its function workers on first use (``eager_workers=True``:
with the node); the option is for an embedded cluster only."""

from __future__ import annotations

import os

import pytest
from restart_support import children, replica_pids

import mpreg
from mpreg import Command, UsageError


def _node_pid() -> int:
    (pid,) = children(os.getpid())  # the embedded node; its workers are its children
    return pid


@pytest.mark.cluster
def test_an_embedded_cluster_starts_a_function_worker_with_its_first_call() -> None:
    mpreg.init(workers=2)
    try:
        node_pid = _node_pid()
        assert replica_pids(node_pid, "functions") == []
        states = sorted(ep.state for ep in mpreg.cluster_status().endpoints)
        assert states == ["idle", "idle"]
        assert mpreg.request([Command("e", "echo", ["up"])]) == {"e": "up"}
        assert len(replica_pids(node_pid, "functions")) == 1
    finally:
        mpreg.shutdown()


@pytest.mark.cluster
def test_eager_workers_start_an_embedded_clusters_workers_with_it() -> None:
    mpreg.init(workers=2, eager_workers=True)
    try:
        assert len(replica_pids(_node_pid(), "functions")) == 2
        states = [ep.state for ep in mpreg.cluster_status().endpoints]
        assert states == ["running", "running"]
    finally:
        mpreg.shutdown()


def test_eager_workers_with_an_address_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="eager_workers"):
        mpreg.init("127.0.0.1:1", token="t" * 32, eager_workers=True)
