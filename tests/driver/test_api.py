"""The sync facade: init/request/submit/get/wait/shutdown, as a script or notebook uses it."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import cluster_actors as ca
import pytest
from restart_support import alive

import mpreg
from mpreg import Command


def _children(pid: int) -> set[int]:
    """Every live descendant of ``pid`` (from /proc)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
                if fields[0] != "Z":
                    parents[int(entry)] = int(fields[1])
            except (OSError, IndexError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _wait_no_children(pid: int, timeout: float = 15.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while (left := _children(pid)) and time.monotonic() < deadline:
        time.sleep(0.05)  # ok-sleep: polling, bounded by a deadline
    return left


@pytest.fixture
def embedded() -> Iterator[None]:
    mpreg.init(actors=[ca.Iris], functions=[ca.add, ca.slow, ca.fail], workers=2)
    try:
        yield
    finally:
        mpreg.shutdown()


@pytest.mark.cluster
def test_embedded_cluster_runs_the_seed_example(embedded: None) -> None:
    assert mpreg.request(
        [
            Command("|first", "echo", ["hi there!"], []),
            Command("|second", "echo", ["|first"], []),
            Command("|third", "echos", ["|first", "AND ME TOO"], []),
        ]
    ) == {"|second": "hi there!", "|third": ["hi there!", "AND ME TOO"]}


@pytest.mark.cluster
def test_init_is_idempotent(embedded: None) -> None:
    address = mpreg.cluster_status().nodes[0].node.address
    assert mpreg.init() == address


@pytest.mark.cluster
def test_futures_chain_inside_the_cluster(embedded: None) -> None:
    a = mpreg.submit("add", 1, 2)
    b = mpreg.submit("add", a, 10)
    c = mpreg.submit("echos", [a, b], datasets=[])
    assert mpreg.get(c) == [[3, 13]]
    assert mpreg.get([a, b]) == [3, 13]


@pytest.mark.cluster
def test_wait_returns_done_and_pending(embedded: None) -> None:
    quick = mpreg.submit("add", 1, 1)
    slow = mpreg.submit("slow", 2.0)
    done, pending = mpreg.wait([quick, slow], num_returns=1, timeout=1.5)
    assert done == [quick] and pending == [slow]
    assert mpreg.get(quick) == 2


@pytest.mark.cluster
def test_get_raises_the_remote_error(embedded: None) -> None:
    with pytest.raises(mpreg.RemoteError, match="kaput"):
        mpreg.get(mpreg.submit("fail", "kaput"))


@pytest.mark.cluster
def test_sync_calls_work_while_an_event_loop_runs_in_this_thread(embedded: None) -> None:
    async def notebook_cell() -> dict[str, object]:
        # Jupyter runs cells inside its own loop; a sync call must not need it.
        return mpreg.request([Command("p", "who", [], ["iris"])])

    result = asyncio.run(notebook_cell())
    assert result["p"]["label"] == "Iris"


@pytest.mark.cluster
def test_cluster_status_lists_nodes_actors_and_datasets(embedded: None) -> None:
    status = mpreg.cluster_status()
    assert len(status.nodes) == 1
    assert sorted(a.label for a in status.actors) == ["Iris", "Iris"]
    assert status.datasets == {"iris"}
    assert {"echo", "echos", "add", "who"} <= status.functions


def test_calls_before_init_say_what_to_do() -> None:
    with pytest.raises(mpreg.MpregError, match=r"mpreg\.init"):
        mpreg.request([Command("e", "echo", [1])])


@pytest.mark.cluster
def test_embedded_cluster_ends_with_the_driver_even_on_kill() -> None:
    script = textwrap.dedent(
        """
        import os, sys, mpreg
        from mpreg import Command
        mpreg.init()
        assert mpreg.request([Command("e", "echo", ["up"])]) == {"e": "up"}
        print("ready", flush=True)
        sys.stdin.read()  # wait to be killed
        """
    )
    with subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE
    ) as driver:
        _kill_driver_and_check_children(driver)


def _kill_driver_and_check_children(driver: subprocess.Popen[bytes]) -> None:
    try:
        assert driver.stdout is not None
        assert driver.stdout.readline().strip() == b"ready"
        spawned = _children(driver.pid)
        assert len(spawned) >= 2  # the node and its workers
        driver.kill()
        driver.wait(10)
        deadline = time.monotonic() + 15
        while any(alive(pid) for pid in spawned) and time.monotonic() < deadline:
            time.sleep(0.05)  # ok-sleep: polling, bounded by a deadline
        assert not [pid for pid in spawned if alive(pid)]
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()


@pytest.mark.cluster
def test_shutdown_leaves_no_child_processes() -> None:
    mpreg.init(workers=1)
    assert _children(os.getpid())
    mpreg.shutdown()
    assert _wait_no_children(os.getpid()) == set()


@pytest.mark.cluster
def test_request_with_a_future_argument_resolves_it_in_the_cluster(embedded: None) -> None:
    base = mpreg.submit("add", 20, 1)
    assert mpreg.request([Command("x", "add", [base, 21])]) == {"x": 42}


@pytest.mark.cluster
def test_requests_from_many_threads_at_once_all_get_their_own_answers(embedded: None) -> None:
    from concurrent.futures import ThreadPoolExecutor

    def calls(thread: int) -> list[int]:
        return [mpreg.request([Command("s", "add", [thread * 1000, i])])["s"] for i in range(25)]

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(calls, range(8)))
    assert results == [[t * 1000 + i for i in range(25)] for t in range(8)]


@pytest.mark.cluster
def test_a_timed_out_request_does_not_leak_its_late_answer_into_the_next(embedded: None) -> None:
    with pytest.raises(mpreg.DeadlineExceeded):
        mpreg.request([Command("s", "slow", [0.5, "late"])], timeout=0.1)
    # The late answer arrives while this request waits: it must be ignored.
    assert mpreg.request([Command("s", "slow", [0.6, "mine"])])["s"]["value"] == "mine"
    assert mpreg.request([Command("e", "echo", ["next"])]) == {"e": "next"}


@pytest.mark.cluster
def test_a_short_deadline_does_not_leave_a_timeout_on_the_next_big_request(
    embedded: None,
) -> None:
    with pytest.raises(mpreg.DeadlineExceeded):
        mpreg.request([Command("s", "slow", [0.3])], timeout=0.05)
    big = b"x" * (64 * 1024 * 1024)
    assert len(mpreg.request([Command("e", "echo", [big])])["e"]) == len(big)


@pytest.mark.cluster
def test_a_dead_embedded_node_fails_requests_fast_not_after_the_reconnect_timeout() -> None:
    import signal

    from mpreg.driver import api

    mpreg.init(workers=1)
    try:
        assert mpreg.request([Command("e", "echo", ["up"], [])]) == {"e": "up"}
        runtime = api._runtime
        assert runtime is not None and runtime.cluster is not None
        workers = [e.pid for e in mpreg.cluster_status().endpoints if e.pid]
        os.kill(runtime.cluster.nodes[0].pid, signal.SIGKILL)
        # Its workers die with it (they may answer a lane call for a moment before).
        _wait_gone(workers)
        began = time.monotonic()
        with pytest.raises(mpreg.ClusterUnavailable):
            mpreg.request([Command("e", "echo", ["down"], [])], timeout=20)
        # One node, our own child: nowhere to fail over to, so no 30 s search.
        assert time.monotonic() - began < 5
    finally:
        mpreg.shutdown()
    assert _wait_no_children(os.getpid()) == set()


def _wait_gone(pids: list[int], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"processes {pids} outlived their node"
        time.sleep(0.01)
