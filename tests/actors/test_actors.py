"""Dataset actors are long-lived processes: built once, supervised, restarted."""

from __future__ import annotations

import asyncio
import os
import signal

import cluster_actors as ca
import pytest

import mpreg
from mpreg import Client, Command, RemoteError
from mpreg.host.cluster import LocalCluster
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster


async def _actor_pids(client: Client, label: str) -> list[int]:
    status = await client.status()
    return [a.pid for a in status.actors if a.label == label and a.state == "running"]


async def _until(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    async with asyncio.timeout(timeout):
        while not await predicate():  # noqa: ASYNC110 - polling a remote status
            await asyncio.sleep(0.05)


async def test_init_runs_once_per_replica_however_many_calls_follow(client: Client) -> None:
    answers = await asyncio.gather(
        *(client.request([Command("w", "who", [], ["iris"])]) for _ in range(60))
    )
    by_pid: dict[int, list[dict[str, int]]] = {}
    for answer in answers:
        by_pid.setdefault(answer["w"]["pid"], []).append(answer["w"])
    assert set(by_pid) == set(await _actor_pids(client, "Iris"))
    assert len(by_pid) == 2
    for calls in by_pid.values():
        assert {c["created"] for c in calls} == {1}
    assert sum(max(c["calls"] for c in calls) for calls in by_pid.values()) == 60


async def test_actor_pids_are_not_the_node_or_the_driver(
    one_node: LocalCluster, client: Client
) -> None:
    pids = await _actor_pids(client, "Iris")
    assert os.getpid() not in pids
    assert one_node.nodes[0].pid not in pids


async def test_killed_actor_is_restarted_and_its_in_flight_call_retried() -> None:
    config = node("solo", workers=1, actors=(ca.OwnsA,))
    async with (
        run_cluster(config) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):
        (old_pid,) = await _actor_pids(client, "OwnsA")
        future = client.submit("block", 1.0, datasets=["a"])

        async def running() -> bool:
            status = await client.status()
            return any(a.in_flight for a in status.actors)

        await _until(running)
        os.kill(old_pid, signal.SIGKILL)
        new_pid = await asyncio.wait_for(future, 30)
        assert new_pid != old_pid
        assert await _actor_pids(client, "OwnsA") == [new_pid]
        status = await client.status()
        assert [a.restarts for a in status.actors] == [1]
        # The restarted replica reloaded its dataset: a fresh __init__.
        who = (await client.request([Command("w", "who", [], ["a"])]))["w"]
        assert who["pid"] == new_pid and who["created"] == 1


async def test_user_exceptions_are_not_retried(client: Client) -> None:
    with pytest.raises(RemoteError):
        await client.request([Command("boom", "fail", ["once"])])
    status = await client.status()
    assert sum(e.calls for e in status.endpoints if e.kind == "worker") == 1


async def test_deploy_a_class_defined_here_by_value(client: Client) -> None:
    @mpreg.actor(datasets=["nums"])
    class Doubler:  # defined in a function: cloudpickle ships it by value
        def __init__(self) -> None:
            self.factor = 2

        def double(self, x: int) -> int:
            return x * self.factor

    endpoints = await client.deploy(Doubler)
    assert len(endpoints) == 1
    assert await client.request([Command("d", "double", [21], ["nums"])]) == {"d": 42}


async def test_deploy_reports_an_init_failure_with_its_traceback(client: Client) -> None:
    with pytest.raises(RemoteError) as info:
        await client.deploy(ca.BrokenInit)
    assert info.value.exc_type == "RuntimeError"
    assert "dataset file missing" in str(info.value)
    assert "__init__" in info.value.remote_traceback


async def test_a_replica_that_failed_to_start_leaves_no_row_in_status(client: Client) -> None:
    with pytest.raises(RemoteError):
        await client.deploy(ca.BrokenInit)

    async def gone() -> bool:
        return all(e.label != "BrokenInit" for e in (await client.status()).endpoints)

    await _until(gone)


async def test_a_replica_that_keeps_dying_during_start_up_is_given_up_on(client: Client) -> None:
    with pytest.raises(mpreg.ActorDiedError, match=r"during start-up 5 times \(last exit code 7\)"):
        await asyncio.wait_for(client.deploy(ca.CrashesInInit), 30)

    async def gone() -> bool:
        return all(e.label != "CrashesInInit" for e in (await client.status()).endpoints)

    await _until(gone)


async def test_retries_zero_fails_a_call_whose_process_died_instead_of_repeating_it() -> None:
    config = node("solo", workers=1, actors=(ca.OwnsA,))
    async with (
        run_cluster(config) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):
        (pid,) = await _actor_pids(client, "OwnsA")
        call = asyncio.ensure_future(
            client.request([Command("b", "block", [1.0], ["a"])], retries=0, timeout=30)
        )

        async def running() -> bool:
            return any(a.in_flight for a in (await client.status()).actors)

        await _until(running)
        os.kill(pid, signal.SIGKILL)
        with pytest.raises(mpreg.ActorDiedError):
            await call
