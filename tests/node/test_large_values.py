"""A 100 MB numpy argument and result: right answer, and no process holds many copies of it."""

from __future__ import annotations

import cluster_actors as ca
import numpy as np
import pytest

from mpreg import Client, Command
from mpreg.testing import node, run_cluster

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]

PAYLOAD = 100 * 10**6
MiB = 1 << 20


def _hwm(pid: int) -> int:
    """Peak resident bytes of process ``pid`` since it started (VmHWM: exact, no sampling)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmHWM for {pid}")


async def test_a_100_mb_round_trip_peaks_under_4x_the_payload_in_node_and_actor() -> None:
    array = np.random.default_rng(7).integers(0, 255, PAYLOAD, dtype=np.uint8)
    async with (
        run_cluster(node("big", workers=0, actors=(ca.Mirror,))) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):
        actor_pid = (await client.request([Command("p", "pid", [], ["mirror"])]))["p"]
        node_pid = cluster.nodes[0].pid
        before = {"node": _hwm(node_pid), "actor": _hwm(actor_pid)}
        result = (await client.request([Command("e", "echo", [array], ["mirror"])], timeout=60))[
            "e"
        ]
        peak = {"node": _hwm(node_pid), "actor": _hwm(actor_pid)}
    print(
        "\npeak RSS (VmHWM) before -> after a 100 MB round trip: "
        + ", ".join(f"{k} {before[k] / MiB:.0f} -> {peak[k] / MiB:.0f} MiB" for k in peak)
    )
    assert isinstance(result, np.ndarray) and np.array_equal(result, array)
    assert peak["node"] < 4 * PAYLOAD
    assert peak["actor"] < 4 * PAYLOAD
