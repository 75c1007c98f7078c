"""A kill storm: replicas of a dataset actor are killed every 200 ms while a client
hammers it, and every request still returns the right value, once."""

from __future__ import annotations

import asyncio
import collections
import os
import random
import signal
import time
from pathlib import Path

import cluster_actors as ca
import pytest
from restart_support import replicas, until

from mpreg import Client, Command
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster

CALLS, DAGS, CONCURRENCY, KILL_EVERY = 2_000, 200, 32, 0.2


def _expect_call(i: int) -> int:
    return 2 * i + 1


def _expect_dag(j: int) -> int:
    return _expect_call(_expect_call(_expect_call(j)))


async def _storm(log: Path, actor: type, dataset: str) -> None:
    label = actor.__name__
    where = [dataset]
    async with (
        run_cluster(node("storm", workers=0, actors=(actor,))) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):

        async def both_serving() -> bool:
            return [r.state for r in await replicas(client, label)] == ["running"] * 2

        await until(both_serving)
        path = str(log)
        jobs: asyncio.Queue[tuple[str, int]] = asyncio.Queue()
        for i in range(CALLS):
            jobs.put_nowait(("call", i))
        for j in range(DAGS):
            jobs.put_nowait(("dag", j))
        answers: collections.Counter[tuple[str, int]] = collections.Counter()
        wrong: list[tuple[str, int, object]] = []
        failed: list[tuple[str, int, BaseException]] = []

        async def one(kind: str, n: int) -> None:
            if kind == "call":
                request = [Command("s", "step", [path, f"c{n}", n], where)]
                expected = {"s": _expect_call(n)}
            else:
                request = [
                    Command("s1", "step", [path, f"d{n}.1", n], where),
                    Command("s2", "step", [path, f"d{n}.2", "s1"], where),
                    Command("s3", "step", [path, f"d{n}.3", "s2"], where),
                ]
                expected = {"s3": _expect_dag(n)}
            try:
                answer = await client.request(request, timeout=60)
            except Exception as exc:
                failed.append((kind, n, exc))
                return
            answers[(kind, n)] += 1
            if answer != expected:
                wrong.append((kind, n, answer))

        async def runner() -> None:
            while not jobs.empty():
                await one(*jobs.get_nowait())

        kills = both_down = 0

        async def killer() -> None:
            nonlocal kills, both_down
            rng = random.Random(8)
            while True:
                await asyncio.sleep(KILL_EVERY)  # ok-sleep: the storm's rhythm
                rows = [r for r in await replicas(client, label) if r.pid]
                if not rows:
                    continue
                victim = rng.choice(rows)
                try:
                    os.kill(victim.pid, signal.SIGKILL)
                except ProcessLookupError:
                    continue  # it died on its own meanwhile
                kills += 1
                if all(r.state != "running" for r in rows if r is not victim):
                    both_down += 1  # now calls can only wait for a restart

        started = time.perf_counter()
        storm = asyncio.ensure_future(killer())
        try:
            await asyncio.gather(*(runner() for _ in range(CONCURRENCY)))
        finally:
            storm.cancel()
        took = time.perf_counter() - started

        executions = collections.Counter(Path(path).read_text().split())  # noqa: ASYNC240 - once, after the run
        repeated = sum(count - 1 for count in executions.values())
        restarts = sum(r.restarts for r in await replicas(client, label))
        print(
            f"\nkill storm: {len(answers)} of {CALLS + DAGS} requests answered, "
            f"{len(failed)} failed, {len(wrong)} wrong, in {took:.1f}s; "
            f"{kills} kills, {restarts} restarts, {both_down} of them left no replica serving; "
            f"{sum(executions.values())} executions "
            f"of {CALLS + 3 * DAGS} steps, {repeated} repeated"
        )
        assert not failed, collections.Counter(type(e).__name__ for _, _, e in failed)
        assert not wrong, wrong[:5]
        assert len(answers) == CALLS + DAGS and set(answers.values()) == {1}
        assert kills >= took / KILL_EVERY / 2  # the storm really blew the whole time
        expected_tokens = {f"c{i}" for i in range(CALLS)} | {
            f"d{j}.{k}" for j in range(DAGS) for k in (1, 2, 3)
        }
        assert expected_tokens <= set(executions)  # every step ran (at least once)
        status = await client.status()
        assert status.nodes[0].in_flight == 0


@pytest.mark.timeout(180)
@pytest.mark.parametrize(
    ("actor", "dataset"),
    [(ca.Storm, "storm"), (ca.SyncStorm, "sync-storm")],
    ids=["async-method", "sync-method"],
)
def test_every_request_survives_a_kill_storm(tmp_path: Path, actor: type, dataset: str) -> None:
    # An async method runs many calls at once; a sync one runs one at a time
    # while the rest wait in its socket, so a kill strands a whole queue.
    # The nodes run their own loops; the client's is not what is under test,
    # so this runs once (not on both test loops) to keep the suite fast.
    asyncio.run(_storm(tmp_path / "executions.log", actor, dataset))
