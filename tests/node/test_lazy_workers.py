"""Function workers started on first use: no process until a call needs one, the
calls made during its start all answered, a failed start and a deadline typed,
and the eager option starting them with the node."""

from __future__ import annotations

import asyncio
import os
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import cluster_actors as ca
import pytest
import stream_actors as sa
from restart_support import replica_pids, replicas, until

from mpreg import ActorDiedError, Client, Command, DeadlineExceeded
from mpreg.node.node import Node
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster

TOKEN = "t" * 32


@asynccontextmanager
async def _in_process(python: str = "", **fields: object) -> AsyncIterator[Node]:
    """A node in this process (so a test can point its supervisor at another interpreter)."""
    me = Node(node("solo", token=TOKEN, host="127.0.0.1", functions=(ca.whereami,), **fields))
    if python:
        me.workers.supervisor.python = python
    try:
        async with asyncio.timeout(30):
            await me.start()
        yield me
    finally:
        await me.stop()


def _slow_python(tmp_path: Path, seconds: float) -> str:
    """An interpreter that takes ``seconds`` to start: a slow first spawn, made visible."""
    script = tmp_path / "slow-python"
    script.write_text(f'#!/bin/sh\nsleep {seconds}\nexec {sys.executable} "$@"\n')
    script.chmod(0o755)
    return str(script)


async def test_a_lazy_worker_has_no_process_until_its_first_call_and_shows_idle() -> None:
    lazy = node("solo", workers=2, eager_workers=False, functions=(ca.whereami,))
    async with (
        run_cluster(lazy) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):
        node_pid = cluster.nodes[0].pid
        assert replica_pids(node_pid, "functions") == []
        rows = await replicas(client, "functions")
        assert [(r.state, r.pid) for r in rows] == [("idle", 0), ("idle", 0)]
        assert all("whereami" in r.functions for r in rows)  # known before it runs

        first = (await client.request([Command("w", "whereami", [])], timeout=20))["w"]
        assert replica_pids(node_pid, "functions") == [first["pid"]]
        # Calls one after another keep to the running worker: the other stays idle.
        for _ in range(5):
            again = (await client.request([Command("w", "whereami", [])], timeout=20))["w"]
            assert again["pid"] == first["pid"]
        states = sorted((r.state, r.pid) for r in await replicas(client, "functions"))
        assert states == [("idle", 0), ("running", first["pid"])]


async def test_calls_made_during_the_start_all_complete_here_and_through_a_peer() -> None:
    async with (
        run_cluster(
            node("back", workers=1, eager_workers=False, functions=(ca.whereami,)),
            node("front", workers=0),
        ) as cluster,
        Client(cluster.nodes[0].address, token=cluster.token) as local,
        Client(cluster.nodes[1].address, token=cluster.token) as via_peer,
    ):
        assert replica_pids(cluster.nodes[0].pid, "functions") == []
        answers = await asyncio.gather(
            *(
                client.request([Command("w", "whereami", [i])], timeout=20)
                for i in range(40)
                for client in (local, via_peer)
            )
        )
        (pid,) = replica_pids(cluster.nodes[0].pid, "functions")
        assert {a["w"]["pid"] for a in answers} == {pid}
        assert sorted(a["w"]["tag"] for a in answers) == sorted(list(range(40)) * 2)


async def test_a_failed_start_fails_the_waiting_call_with_a_typed_error_then_retries(
    tmp_path: Path,
) -> None:
    missing = str(tmp_path / "no-such-python")
    async with (
        _in_process(python=missing, workers=1, eager_workers=False) as me,
        Client(me.address, token=TOKEN) as client,
    ):
        started = time.perf_counter()
        with pytest.raises(ActorDiedError) as info:
            await client.request([Command("w", "whereami", [])], timeout=20)
        assert "FileNotFoundError" in str(info.value) and missing in str(info.value)
        assert time.perf_counter() - started < 5
        (row,) = me.status.local().endpoints
        assert row.state == "idle" and "FileNotFoundError" in row.last_error
        # A call right after fails the same way ...
        with pytest.raises(ActorDiedError):
            await client.request([Command("w", "whereami", [])], timeout=20)
        # ... and once the interpreter is back, the next call after the backoff starts it.
        me.workers.supervisor.python = sys.executable

        async def serves() -> bool:
            try:
                await client.request([Command("w", "whereami", [])], timeout=20)
            except ActorDiedError:
                return False
            return True

        await until(serves)
        (row,) = me.status.local().endpoints
        assert row.state == "running" and row.pid


async def test_a_deadline_applies_while_the_call_waits_for_the_start(tmp_path: Path) -> None:
    async with (
        _in_process(python=_slow_python(tmp_path, 3), workers=1, eager_workers=False) as me,
        Client(me.address, token=TOKEN) as client,
    ):
        started = time.perf_counter()
        with pytest.raises(DeadlineExceeded):
            await client.request([Command("w", "whereami", [])], timeout=0.5)
        took = time.perf_counter() - started
        assert took < 2.0, f"DeadlineExceeded after {took:.2f}s, not at its deadline"
        # The start goes on; a call with time to wait is answered by it.
        answer = await client.request([Command("w", "whereami", [])], timeout=20)
        (slot,) = me.workers.supervisor.slots.values()
        assert answer["w"]["pid"] == slot.pid


async def test_eager_workers_start_with_the_node() -> None:
    async with _in_process(workers=2, eager_workers=True) as me:
        rows = me.status.local().endpoints
        assert [r.state for r in rows] == ["running", "running"]
        assert all(r.pid for r in rows)
        assert sorted(replica_pids(os.getpid(), "functions")) == sorted(r.pid for r in rows)


async def test_a_stream_can_be_the_call_that_starts_a_lazy_worker() -> None:
    lazy = node("solo", workers=1, eager_workers=False, functions=(sa.count_up,))
    async with (
        run_cluster(lazy) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):
        assert replica_pids(cluster.nodes[0].pid, "functions") == []
        async with asyncio.timeout(20), client.stream("count_up", 500, window=16) as items:
            got = [item async for item in items]
        assert got == list(range(500))
