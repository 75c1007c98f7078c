"""Whole nodes killed with `kill -9` one after another, and replaced, while a client
hammers a dataset they serve: every request is answered, none fails."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from restart_support import until

from mpreg import Client, Command
from mpreg.config import NodeConfig
from mpreg.host.cluster import LocalCluster
from mpreg.testing import node

pytestmark = pytest.mark.cluster

KILLS = 3


def _replica(name: str, seed: str) -> NodeConfig:
    return node(name, resources=("shared",), functions=("cluster_actors:whereami",), peers=(seed,))


@pytest.mark.timeout(120)
async def test_nodes_killed_and_replaced_in_turn_lose_no_request() -> None:
    cluster = LocalCluster()
    try:
        entry = await cluster.add_node(node("entry", workers=0), join=False)
        live = [
            await cluster.add_node(_replica(f"r{i}", entry.address), join=False) for i in (0, 1)
        ]
        async with Client(entry.address, token=cluster.token) as client:

            async def serving(names: set[str]) -> bool:
                status = await client.status(timeout=10)
                alive = {n.node.name for n in status.nodes if n.state == "alive"}
                return names <= alive

            await until(lambda: serving({"r0", "r1"}))
            answered = 0
            failed: list[BaseException] = []
            stop = asyncio.Event()

            async def hammer(i: int) -> None:
                nonlocal answered
                n = 0
                while not stop.is_set():
                    n += 1
                    tag = f"{i}.{n}"
                    try:
                        got = await client.request(
                            [Command("w", "whereami", [tag], ["shared"])], timeout=30
                        )
                        assert got["w"]["tag"] == tag
                        answered += 1
                    except Exception as exc:
                        failed.append(exc)

            runners = [asyncio.create_task(hammer(i)) for i in range(8)]
            for k in range(KILLS):
                victim = live.pop(0)
                os.kill(victim.pid, signal.SIGKILL)
                # A fresh node takes its place, joining through a survivor.
                replacement = _replica(f"r{k + 2}", live[0].address)
                live.append(await cluster.add_node(replacement, join=False))
                await until(lambda: serving({n.config.name for n in live}), timeout=20)
                before = answered

                async def progressed(floor: int = before + 20) -> bool:
                    return answered >= floor  # calls keep being answered after the swap

                await until(progressed, timeout=10)
            stop.set()
            await asyncio.gather(*runners)
        assert failed == [], f"{len(failed)} of {answered + len(failed)} failed: {failed[:3]}"
        assert answered > 100
    finally:
        await cluster.stop()
