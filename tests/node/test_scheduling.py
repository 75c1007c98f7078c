"""Load balancing over replicas and concurrency of independent commands."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import pytest

from mpreg import Client, Command

pytestmark = pytest.mark.cluster


async def test_two_hundred_calls_spread_over_both_replicas(client: Client) -> None:
    sequential = [
        (await client.request([Command("w", "who", [], ["iris"])]))["w"]["pid"] for _ in range(100)
    ]
    concurrent = await asyncio.gather(
        *(client.request([Command("w", "who", [], ["iris"])]) for _ in range(100))
    )
    counts = Counter(sequential + [r["w"]["pid"] for r in concurrent])
    assert len(counts) == 2
    assert min(counts.values()) >= 0.3 * 200, counts


async def test_independent_commands_run_concurrently(client: Client) -> None:
    started = time.perf_counter()
    result = await client.request(
        [Command("one", "slow", [0.5, 1]), Command("two", "slow", [0.5, 2])]
    )
    elapsed = time.perf_counter() - started
    assert {result["one"]["value"], result["two"]["value"]} == {1, 2}
    assert elapsed < 0.9, f"two 0.5 s commands took {elapsed:.2f} s"


async def test_diamond_dag_is_right_and_runs_its_branches_together(client: Client) -> None:
    result = await client.request(
        [
            Command("a", "add", [1, 2]),
            Command("b", "slow", [0.4, "a"]),
            Command("c", "slow", [0.4, "a"]),
            Command("d", "echos", ["b", "c"]),
        ]
    )
    b, c = result["d"]
    assert b["value"] == c["value"] == 3
    assert set(result) == {"d"}
    # b and c overlapped in time: each started before the other ended.
    assert b["start"] < c["end"] and c["start"] < b["end"]


async def test_each_command_starts_when_its_own_dependencies_finish(client: Client) -> None:
    # "late" depends only on the quick branch; it must not wait for the slow one.
    result = await client.request(
        [
            Command("quick", "add", [1, 1]),
            Command("slow_branch", "slow", [0.6, "x"]),
            Command("late", "slow", [0.0, "quick"]),
        ],
        return_all=True,
    )
    assert result["late"]["value"] == 2
    assert result["late"]["end"] < result["slow_branch"]["end"]


async def test_async_actor_methods_serve_calls_concurrently(client: Client) -> None:
    started = time.perf_counter()
    naps = [Command(f"n{i}", "nap", [0.3], ["iris"]) for i in range(6)]
    result = await client.request(naps)
    assert result == {f"n{i}": 0.3 for i in range(6)}
    assert time.perf_counter() - started < 0.9


async def test_chain_returns_only_the_sink_to_the_driver(client: Client) -> None:
    seen: list[object] = []
    original = client._on_message

    def spy(conn: object, message: object) -> None:
        seen.append(message)
        original(conn, message)  # type: ignore[arg-type]

    client._conn.on_message = spy  # type: ignore[union-attr]
    chain = [Command("s0", "add", [1, 0])] + [
        Command(f"s{i}", "add", [f"s{i - 1}", 1]) for i in range(1, 5)
    ]
    assert await client.request(chain) == {"s4": 5}
    # One message back for the whole chain: intermediates stay in the cluster.
    assert len(seen) == 1


async def test_results_come_back_in_command_order_not_finishing_order(client: Client) -> None:
    result = await client.request(
        [Command("late", "slow", [0.3, "late"]), Command("early", "add", [1, 1])]
    )
    assert list(result) == ["late", "early"]
