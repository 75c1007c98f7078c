"""Replicas that die and restart: calls wait for them, kills never exhaust them,
a crash loop is slow, visible and fails calls fast, a broken supervisor says so."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import time
from pathlib import Path

import cluster_actors as ca
import pytest
from restart_support import cpu_seconds, replica_pids, replicas, until

from mpreg import Client, Command, RemoteError
from mpreg.actors.supervisor import ActorState
from mpreg.driver.planner import plan_request
from mpreg.errors import UnknownFunctionError
from mpreg.node.node import Node
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster

A = ["a"]


async def _running_pid(client: Client, label: str, not_pid: int = 0) -> int:
    """Wait until ``label``'s only replica serves from a process other than ``not_pid``."""
    found: list[int] = []

    async def serving() -> bool:
        (row,) = await replicas(client, label)
        found[:] = [row.pid]
        return row.state == "running" and row.pid not in (0, not_pid)

    await until(serving)
    return found[0]


async def test_calls_wait_for_a_restarting_replica_on_this_node_and_on_a_peer() -> None:
    async with (
        run_cluster(node("front", workers=0), node("back", workers=0, actors=(ca.OwnsA,))) as c,
        Client(c.nodes[0].address, token=c.token) as via_peer,
        Client(c.nodes[1].address, token=c.token) as local,
    ):
        pid = await _running_pid(local, "OwnsA")
        os.kill(pid, signal.SIGKILL)

        async def restarting() -> bool:
            return [r.state for r in await replicas(local, "OwnsA")] != ["running"]

        await until(restarting)
        # The only replica is down: both nodes still know the pair, and the
        # calls wait for it instead of failing with UnknownFunctionError.
        answers = await asyncio.gather(
            *(
                client.request([Command("w", "who", [], A)], timeout=20)
                for client in (via_peer, local)
                for _ in range(10)
            )
        )
        assert {a["w"]["created"] for a in answers} == {1}
        assert {a["w"]["pid"] for a in answers} == {await _running_pid(local, "OwnsA", pid)}
        # Never-offered pairs still fail at once.
        with pytest.raises(UnknownFunctionError):
            await via_peer.request([Command("x", "nothing_serves_this", [])], timeout=5)


async def _next_process(node_pid: int, label: str, old_pid: int) -> int:
    async with asyncio.timeout(20):
        while True:
            new = set(replica_pids(node_pid, label)) - {old_pid}
            if new:
                return new.pop()
            await asyncio.sleep(0.005)  # ok-sleep: polling /proc for the next spawn


@pytest.mark.timeout(120)
def test_a_dataset_survives_50_consecutive_outside_kills() -> None:
    # The node's loop is under test, not the client's: run once, not on both test loops.
    asyncio.run(_fifty_kills())


async def _fifty_kills() -> None:
    async with (
        run_cluster(node("solo", workers=0, actors=(ca.OwnsA,))) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):
        node_pid = cluster.nodes[0].pid
        pid = await _running_pid(client, "OwnsA")
        started = time.perf_counter()
        during_start_up = 0
        for kill in range(50):
            os.kill(pid, signal.SIGKILL)
            if kill % 2 == 0:
                # The next kill hits the new process the moment it exists: in its start-up.
                pid = await _next_process(node_pid, "OwnsA", pid)
                during_start_up += 1
            else:  # the next one hits it serving again
                pid = await _running_pid(client, "OwnsA", pid)
        answer = await client.request([Command("w", "who", [], A)], timeout=30)
        (row,) = await replicas(client, "OwnsA")
        print(
            f"\n50 kills ({during_start_up} during start-up) in "
            f"{time.perf_counter() - started:.1f}s; restarts={row.restarts}"
        )
        assert answer["w"]["created"] == 1
        assert row.state == "running" and row.restarts >= 50


async def test_a_crash_loop_is_slow_shown_in_status_and_fails_calls_fast(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag = tmp_path / "broken"
    monkeypatch.setenv(ca.FLAG_ENV, str(flag))
    async with (
        run_cluster(
            node("solo", workers=0, actors=(ca.FlakyInit,)), node("front", workers=0)
        ) as cluster,
        Client(cluster.address, token=cluster.token) as client,
        Client(cluster.nodes[1].address, token=cluster.token) as via_peer,
    ):
        pid = await _running_pid(client, "FlakyInit")
        flag.touch()  # from now on its __init__ raises
        os.kill(pid, signal.SIGKILL)

        async def looping() -> bool:
            (row,) = await replicas(client, "FlakyInit")
            return row.state == "crash-loop" and row.restarts >= 3

        await until(looping)
        (row,) = await replicas(client, "FlakyInit")
        assert "RuntimeError: cannot load the dataset" in row.last_error
        assert "__init__" in row.last_error  # the traceback
        assert row.datasets == ("flaky",) and "ping" in row.functions

        started = time.perf_counter()
        with pytest.raises(RemoteError) as info:
            await client.request([Command("p", "ping", [], ["flaky"])], timeout=20)
        took = time.perf_counter() - started
        assert took < 1.0
        assert info.value.command == "p" and info.value.exc_type == "RuntimeError"
        assert "__init__" in info.value.remote_traceback
        # A peer knows the crash loop too: a call through it fails just as fast.
        started = time.perf_counter()
        with pytest.raises(RemoteError) as info:
            await via_peer.request([Command("p", "ping", [], ["flaky"])], timeout=20)
        assert time.perf_counter() - started < 1.0
        assert "__init__" in info.value.remote_traceback

        # Backing off, the loop costs little CPU: a restart without backoff
        # keeps about one core busy starting Python.
        before, t0 = cpu_seconds(cluster.nodes[0].pid), time.perf_counter()
        await asyncio.sleep(3.0)  # ok-sleep: the span the CPU is measured over
        used = cpu_seconds(cluster.nodes[0].pid) - before
        share = used / (time.perf_counter() - t0)
        (later,) = await replicas(client, "FlakyInit")
        print(
            f"\ncrash loop: restarts {row.restarts} -> {later.restarts}, "
            f"call failed in {took * 1e3:.0f} ms, CPU {share:.0%} of a core"
        )
        assert share < 0.3
        assert later.restarts - row.restarts <= 3


async def test_a_supervisor_that_cannot_spawn_turns_the_replica_failed_with_its_reason(
    tmp_path: Path,
) -> None:
    # The node's interpreter lives in a directory that is deleted while it
    # runs (a temporary environment): the next restart cannot spawn.
    vanishing = tmp_path / "env" / "python"
    vanishing.parent.mkdir()
    vanishing.write_text(f'#!/bin/sh\nexec {sys.executable} "$@"\n')
    vanishing.chmod(0o755)
    me = Node(node("solo", workers=0, actors=(ca.OwnsA,), token="t" * 32, host="127.0.0.1"))
    me.workers.supervisor.python = str(vanishing)
    try:
        async with asyncio.timeout(30):
            await me.start()
        (slot,) = me.workers.supervisor.slots.values()
        shutil.rmtree(vanishing.parent)
        os.kill(slot.pid, signal.SIGKILL)
        async with asyncio.timeout(10):
            while slot.state is not ActorState.FAILED:  # noqa: ASYNC110 - the supervisor's task
                await asyncio.sleep(0.02)  # ok-sleep: polling, bounded by the timeout
        (row,) = me.status.local().endpoints
        assert row.state == "failed"
        assert "FileNotFoundError" in row.last_error and str(vanishing) in row.last_error
        assert row.datasets == ("a",)  # the row keeps what it served
        with pytest.raises(UnknownFunctionError):  # given up: removed from routing
            me.routes.check(plan_request([Command("w", "who", [], A)], first_task_id=1).tasks)
    finally:
        await me.stop()
