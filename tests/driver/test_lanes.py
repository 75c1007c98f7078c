"""Direct lanes from the driver: calls straight to a worker process, the guarantees kept.

Each test drives the public API (``mpreg.request``/``submit``/``get``, the async
``Client``) against real node and worker processes, and checks both that the
calls went on a lane (the lane counters) and that the answers are right.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import cluster_actors as ca
import data_support as ds
import numpy as np
import pytest
from restart_support import alive

import mpreg
from mpreg import (
    ActorDiedError,
    Client,
    Command,
    DeadlineExceeded,
    RemoteError,
    TaskCancelled,
)
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster

FUNCTIONS = (
    ca.add,
    ca.whereami,
    ca.fail,
    ca.slow,
    ca.slow_flagged,
    ca.aslow_flagged,
    *ds.FUNCTIONS,
)


@pytest.fixture
def embedded() -> Iterator[None]:
    mpreg.init(functions=FUNCTIONS, actors=[ca.Timed])
    try:
        yield
    finally:
        mpreg.shutdown()


def _sync_lanes() -> int:
    from mpreg.driver import api

    runtime = api._runtime
    assert runtime is not None and runtime.sync is not None
    return runtime.sync.lanes.calls


def _async_lanes() -> int:
    from mpreg.driver import api

    runtime = api._runtime
    assert runtime is not None and runtime.client is not None
    return runtime.client.lanes.calls


def _wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def _until_futures_use_lanes(fun: str = "add", *args: object) -> None:
    """Submit ``fun`` until one goes on a lane (its route is asked by the first, in the
    background, and again after a lane is lost)."""
    deadline = time.monotonic() + 20
    while True:
        before = _async_lanes()
        mpreg.submit(fun, *(args or (0, 0))).result(timeout=30)
        if _async_lanes() > before:
            return
        assert time.monotonic() < deadline, "no lane was used"


def _until_requests_use_lanes() -> None:
    """Request until one goes on a lane (a worker started on first use serves a moment later)."""
    deadline = time.monotonic() + 20
    while True:
        before = _sync_lanes()
        assert mpreg.request([Command("w", "add", [0, 0])], timeout=30)["w"] == 0
        if _sync_lanes() > before:
            return
        assert time.monotonic() < deadline, "no lane was used"


def _worker_pids(fun: str) -> list[int]:
    rows = [e.pid for e in mpreg.cluster_status().endpoints if fun in e.functions and e.pid]
    assert rows
    return rows


def test_sync_requests_and_submits_go_on_lanes(embedded: None) -> None:
    _until_requests_use_lanes()
    before = _sync_lanes()
    for i in range(20):
        assert mpreg.request([Command("s", "add", [i, 1])])["s"] == i + 1
    assert _sync_lanes() == before + 20
    futures = [mpreg.submit("add", i, 2) for i in range(300)]
    assert mpreg.get(futures, timeout=30) == [i + 2 for i in range(300)]
    _until_futures_use_lanes()
    before = _async_lanes()
    assert mpreg.get([mpreg.submit("add", i, 3) for i in range(100)], timeout=30) == [
        i + 3 for i in range(100)
    ]
    assert _async_lanes() - before == 100
    # An actor method, with its dataset, goes on a lane too.
    assert mpreg.request([Command("t", "sleep", [0.0], ["timed"])])["t"] == 0.0


def test_errors_on_a_lane_name_their_command(embedded: None) -> None:
    _until_requests_use_lanes()
    with pytest.raises(RemoteError) as caught:
        mpreg.request([Command("boom", "fail", ["on the lane"])])
    assert "on the lane" in str(caught.value)
    assert caught.value.command == "boom"
    future = mpreg.submit("fail", "from a future")
    with pytest.raises(RemoteError, match="from a future"):
        future.result(timeout=30)


def test_lane_futures_feed_other_calls_and_big_results_stay_on_the_node(embedded: None) -> None:
    count = 1_000_000  # 8 MB: held on the node, not pushed to the driver
    _until_futures_use_lanes()
    made = mpreg.submit("make", count)
    doubled = mpreg.submit("double", made)  # uses a lane future: through the node
    total = mpreg.submit("total", doubled)
    assert total.result(timeout=30) == float(np.arange(count).sum() * 2)
    assert made.held > 0  # the lane sent the big value to the node (Kept)
    np.testing.assert_array_equal(made.result(timeout=30), np.arange(count))
    small = mpreg.submit("add", 20, 22)  # a small lane result, used by a request
    assert mpreg.request([Command("x", "add", [small, 1])])["x"] == 43
    assert mpreg.get(mpreg.submit("add", small, small), timeout=30) == 84


def test_deadline_and_cancel_stop_a_call_on_a_lane(embedded: None, tmp_path: Path) -> None:
    _until_requests_use_lanes()
    flag = str(tmp_path / "started")
    started = time.monotonic()
    with pytest.raises(DeadlineExceeded):
        mpreg.request([Command("late", "aslow_flagged", [flag, 30])], timeout=0.5)
    assert time.monotonic() - started < 5
    _wait_for(lambda: os.path.exists(flag + ".cancelled"))  # the coroutine was cancelled
    before = _sync_lanes()
    assert mpreg.request([Command("after", "add", [2, 2])])["after"] == 4  # the lane serves on
    assert _sync_lanes() == before + 1
    _until_futures_use_lanes()
    flag2 = str(tmp_path / "started2")
    future = mpreg.submit("aslow_flagged", flag2, 30)
    _wait_for(lambda: os.path.exists(flag2))
    assert future.cancel()
    with pytest.raises(TaskCancelled):
        future.result(timeout=5)
    _wait_for(lambda: os.path.exists(flag2 + ".cancelled"))


def test_lanes_off_sends_everything_through_the_node() -> None:
    mpreg.init(functions=FUNCTIONS, lanes=False)
    try:
        assert mpreg.request([Command("s", "add", [1, 2])])["s"] == 3
        assert mpreg.get([mpreg.submit("add", i, 1) for i in range(50)], timeout=30) == [
            i + 1 for i in range(50)
        ]
        assert _sync_lanes() == 0 and _async_lanes() == 0
    finally:
        mpreg.shutdown()


def test_a_killed_worker_retries_lane_calls_through_the_node(
    embedded: None, tmp_path: Path
) -> None:
    _until_requests_use_lanes()
    _until_futures_use_lanes()

    def kill_all() -> None:
        for pid in _worker_pids("slow"):
            os.kill(pid, signal.SIGKILL)

    def kill_once_started(flag: Path) -> None:
        """Kill the workers from a thread once the call that leaves ``flag`` runs."""

        def watch() -> None:
            _wait_for(flag.exists)
            kill_all()

        threading.Thread(target=watch, daemon=True).start()

    # A sync request that must not repeat fails typed when its lane dies under it.
    flag = tmp_path / "once"
    kill_once_started(flag)
    with pytest.raises(ActorDiedError, match="must not repeat"):
        mpreg.request([Command("once", "slow_flagged", [str(flag), 5.0])], retries=0, timeout=30)
    # With retries, the calls of the lost lanes are sent through the node again.
    assert mpreg.request([Command("again", "add", [2, 3])], timeout=60)["again"] == 5
    _until_futures_use_lanes()
    futures = [mpreg.submit("slow", 0.5, i) for i in range(4)]
    time.sleep(0.2)  # ok-sleep: the calls reach the processes before they die
    kill_all()
    values = [r["value"] for r in mpreg.get(futures, timeout=60)]
    assert values == list(range(4))
    # A future that must not repeat fails typed when its lane dies under it.
    _until_futures_use_lanes("slow_flagged", str(tmp_path / "warm"), 0.0)
    before = _async_lanes()
    flag = tmp_path / "once-future"
    once = mpreg.submit("slow_flagged", str(flag), 5.0, retries=0)
    kill_once_started(flag)
    with pytest.raises(ActorDiedError, match="must not repeat"):
        once.result(timeout=30)
    assert _async_lanes() == before + 1  # it was on a lane


async def test_the_async_client_uses_lanes_and_balances_replicas() -> None:
    config = node("lanes", workers=2, functions=FUNCTIONS)
    async with run_cluster(config) as cluster, Client(cluster.address, token=cluster.token) as c:
        assert await c.submit("add", 1, 1) == 2
        deadline = time.monotonic() + 20
        while c.lanes.calls == 0:
            assert time.monotonic() < deadline
            await c.submit("add", 0, 0)
        pids = [(await c.request([Command("w", "whereami", [])]))["w"]["pid"] for _ in range(40)]
        assert len(set(pids)) == 2  # both worker processes took lane calls
        results = await asyncio.gather(*(c.submit("add", i, i) for i in range(500)))
        assert results == [2 * i for i in range(500)]


async def test_no_lanes_when_a_replica_lives_on_another_member() -> None:
    first = node("la", workers=1, functions=FUNCTIONS)
    async with run_cluster(first) as cluster:
        await cluster.add_node(node("lb", workers=1, functions=FUNCTIONS, peers=(cluster.address,)))
        async with Client(cluster.address, token=cluster.token) as c:
            deadline = time.monotonic() + 20
            while len((await c.status()).endpoints) < 2:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            nodes = set()
            for _ in range(60):
                nodes.add((await c.request([Command("w", "whereami", [])]))["w"]["pid"])
            assert len(nodes) == 2  # the node still balances over both members
            assert c.lanes.calls == 0


def test_a_lane_whose_process_died_while_idle_costs_no_retry(embedded: None) -> None:
    _until_requests_use_lanes()  # the lane is open
    victims = _worker_pids("add")
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    # Dead, and seen dead by its node: the kernel has told every peer of theirs by then.
    _wait_for(lambda: not any(alive(pid) for pid in victims))
    _wait_for(lambda: not set(victims) & _serving_pids("add"))
    # The dead process's lane is seen closed before anything is sent on it: the call
    # goes through the node (or a new lane), and one that must not repeat still runs.
    assert mpreg.request([Command("b", "add", [2, 2])], retries=0, timeout=30)["b"] == 4


def _serving_pids(fun: str) -> set[int]:
    return {e.pid for e in mpreg.cluster_status().endpoints if fun in e.functions and e.pid}


def test_a_redeploy_is_seen_at_once_and_fails_no_lane_call(embedded: None) -> None:
    which = [Command("w", "which", [], ["versioned"])]
    mpreg.deploy(ca.Versioned, datasets=["versioned"], args=(1,), replicas=1)
    deadline = time.monotonic() + 20
    before = _sync_lanes()
    while _sync_lanes() == before:  # until requests go on its lane
        assert mpreg.request(which, timeout=30)["w"] == 1
        assert time.monotonic() < deadline, "no lane was used"
    seen: list[int] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def keep_calling() -> None:  # another thread: its calls go the async way, on lanes too
        while not stop.is_set():
            try:
                seen.append(mpreg.request(which, retries=0, timeout=30)["w"])
            except Exception as exc:
                failures.append(exc)

    caller = threading.Thread(target=keep_calling)
    caller.start()
    try:
        _wait_for(lambda: len(seen) >= 20 or bool(failures))
        mpreg.deploy(ca.Versioned, datasets=["versioned"], args=(2,), replicas=1)
        # The driver that switched never reaches the old version again, lanes or not.
        assert [mpreg.request(which, timeout=30)["w"] for _ in range(20)] == [2] * 20
        _wait_for(lambda: seen[-5:] == [2] * 5 or bool(failures))
    finally:
        stop.set()
        caller.join(30)
    assert failures == []  # no call failed while the old version stopped
    assert set(seen) == {1, 2}
