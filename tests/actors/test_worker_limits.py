"""Values too big for a frame: a typed error where they were made, nothing re-run or killed."""

from __future__ import annotations

import time

import cluster_actors as ca
import pytest

from mpreg import Client, Command, SerializationError
from mpreg.protocol.frames import MAX_VALUE_BYTES
from mpreg.testing import node, run_cluster

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]

TOO_BIG = 200_000_000  # over the default 128 MiB frame limit
TIMED = ["timed"]


async def _counts(client: Client) -> dict[str, int]:
    counts: dict[str, int] = (
        await client.request([Command("c", "counts", [], TIMED)], timeout=10)
    )["c"]
    return counts


async def test_too_big_a_result_or_argument_is_a_serialization_error_and_nothing_reruns() -> None:
    async with (
        run_cluster(node("big", workers=0, actors=(ca.Timed,))) as cluster,
        Client(cluster.address, token=cluster.token) as client,
    ):
        pid = (await _counts(client))["pid"]
        start = time.monotonic()
        with pytest.raises(SerializationError) as result_error:
            await client.request([Command("r", "big", [TOO_BIG], TIMED)], timeout=60)
        result_took = time.monotonic() - start
        assert f"{MAX_VALUE_BYTES:,}" in str(result_error.value)
        assert "200,0" in str(result_error.value)  # its size, e.g. 200,000,038 bytes

        payload = b"x" * TOO_BIG
        with pytest.raises(SerializationError) as argument_error:
            await client.request([Command("a", "size_of", [payload], TIMED)], timeout=60)
        del payload
        assert f"{MAX_VALUE_BYTES:,}" in str(argument_error.value)
        assert argument_error.value.command == "a"

        counts = await _counts(client)
    print(f"\n200 MB result refused in {result_took:.2f}s: {result_error.value}")
    assert counts["started"] == 1  # the result's function ran once; the argument never left
    assert counts["pid"] == pid  # and its worker was neither killed nor restarted
