"""A chain of steps on one actor runs inside the actor, as one call (real processes).

Fusion is proved by the node's own count of calls sent to the actor's
process: one per chain, where unfused steps cost one each.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import chain_actors as ca
import pytest
from restart_support import replicas, until

from mpreg import Client, Command, DeadlineExceeded, RemoteError
from mpreg.errors import ActorDiedError, FieldError
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster

P = ["pipe"]
CHAIN = [
    Command("h", "inc", [1], P),
    Command("g", "dbl", ["h"], P),
    Command("f", "dec", ["g"], P),
]


async def _calls(client: Client, label: str) -> int:
    """Calls the node sent to ``label``'s process so far."""
    return sum(row.calls for row in await replicas(client, label))


async def _history(client: Client) -> dict[str, Any]:
    result = await client.request([Command("x", "history", [], P)], timeout=20)
    return result["x"]  # type: ignore[no-any-return]


def _cluster() -> Any:
    return run_cluster(node("n", workers=0, actors=(ca.Pipeline, ca.Other)))


async def test_a_three_step_chain_is_one_call_to_the_actor_and_every_step_ran_once() -> None:
    async with _cluster() as c, Client(c.nodes[0].address, token=c.token) as client:
        assert await client.request(CHAIN, timeout=20) == {"f": 1}
        assert await _calls(client, "Pipeline") == 1
        assert (await _history(client))["runs"] == ["inc", "dbl", "dec"]
        everything = await client.request(CHAIN, timeout=20, return_all=True)
        assert everything == {"h": 2, "g": 4, "f": 1}
        assert await _calls(client, "Pipeline") == 3  # the chain, history, the chain
        # Async steps are awaited in turn, inside the same call.
        chain = [Command("a", "ainc", [1], P), Command("b", "ainc", ["a"], P)]
        assert await client.request(chain, timeout=20) == {"b": 3}
        assert await _calls(client, "Pipeline") == 4


async def test_a_chain_through_another_actor_is_not_fused_and_still_works() -> None:
    async with _cluster() as c, Client(c.nodes[0].address, token=c.token) as client:
        chain = [
            Command("h", "inc", [1], P),
            Command("n", "neg", ["h"], ["other"]),
            Command("f", "dec", ["n"], P),
        ]
        assert await client.request(chain, timeout=20) == {"f": -5}
        assert await _calls(client, "Pipeline") == 2
        assert await _calls(client, "Other") == 1


async def test_an_error_in_step_two_names_it_and_step_three_never_runs() -> None:
    async with _cluster() as c, Client(c.nodes[0].address, token=c.token) as client:
        chain = [CHAIN[0], Command("g", "boom", ["h"], P), CHAIN[2]]
        with pytest.raises(RemoteError) as caught:
            await client.request(chain, timeout=20)
        assert caught.value.command == "g"
        assert caught.value.exc_type == "ValueError" and "boom on 2" in str(caught.value)
        assert (await _history(client))["runs"] == ["inc"]


async def test_fields_of_a_step_reach_the_next_and_a_missing_one_names_the_consumer() -> None:
    async with _cluster() as c, Client(c.nodes[0].address, token=c.token) as client:
        chain = [Command("r", "record", [5], P), Command("d", "dbl", ["r.rows.1"], P)]
        assert await client.request(chain, timeout=20) == {"d": 12}
        both = await client.request(chain, timeout=20, return_all=True)
        assert both["d"] == 12 and both["r"]["rows"] == [5, 6]
        assert await _calls(client, "Pipeline") == 2
        missing = [chain[0], Command("d", "dbl", ["r.rows.7"], P)]
        with pytest.raises(FieldError) as caught:
            await client.request(missing, timeout=20)
        assert caught.value.command == "d" and "r.rows.7" in str(caught.value)


async def test_a_trace_shows_each_fused_step_in_turn_on_the_actor() -> None:
    async with _cluster() as c, Client(c.nodes[0].address, token=c.token) as client:
        result = await client.request(CHAIN, timeout=20, trace=True)
        rows = {row.name: row for row in result.trace.commands}  # type: ignore[attr-defined]
        assert [rows[n].ok for n in "hgf"] == [True, True, True]
        assert len({rows[n].endpoint for n in "hgf"}) == 1
        assert rows["h"].finished <= rows["g"].started <= rows["g"].finished <= rows["f"].started
        assert result.trace.max_parallel == 1  # type: ignore[attr-defined]


async def test_a_chain_whose_process_is_killed_is_retried_whole_or_fails_typed(
    tmp_path: Path,
) -> None:
    async with _cluster() as c, Client(c.nodes[0].address, token=c.token) as client:
        (first,) = [row.pid for row in await replicas(client, "Pipeline")]
        after = Command("f", "dec", ["k"], P)
        chain = [CHAIN[0], Command("k", "die_once", ["h", str(tmp_path / "a")], P), after]
        assert await client.request(chain, timeout=30) == {"f": -1}  # dec(die_once(inc(1)))
        history = await _history(client)
        assert history["pid"] != first
        assert history["runs"] == ["inc", "dec"]  # the whole chain ran again, in the new process

        with pytest.raises(ActorDiedError) as caught:
            chain[1] = Command("k", "die_once", ["h", str(tmp_path / "b")], P)
            await client.request(chain, timeout=30, retries=0)
        # The node cannot know which step ran when the process died: it names the first.
        assert "'h'" in str(caught.value) and "'k', 'f' fused into its call" in str(caught.value)


async def test_a_step_past_the_deadline_never_starts() -> None:
    async with _cluster() as c, Client(c.nodes[0].address, token=c.token) as client:
        chain = [CHAIN[0], Command("s", "nap", ["h", 1.0], P), Command("f", "dec", ["s"], P)]
        started = time.monotonic()
        with pytest.raises(DeadlineExceeded):
            await client.request(chain, timeout=0.3)
        assert time.monotonic() - started < 0.9  # answered at the deadline, not after the nap
        # The nap could not be stopped; the step after it saw the deadline and never ran.
        assert (await _history(client))["runs"] == ["inc"]


async def test_an_async_step_running_at_the_deadline_is_cancelled_in_the_actor() -> None:
    async with _cluster() as c, Client(c.nodes[0].address, token=c.token) as client:
        chain = [CHAIN[0], Command("s", "anap", ["h", 30.0], P), Command("f", "dec", ["s"], P)]
        with pytest.raises(DeadlineExceeded):
            await client.request(chain, timeout=0.3)

        async def answered() -> bool:
            # The node keeps a call's slot until its process answers: the
            # coroutine was cancelled at the deadline, not left to sleep 30 s.
            return [row.in_flight for row in await replicas(client, "Pipeline")] == [0]

        await until(answered, timeout=5)
        assert (await _history(client))["runs"] == ["inc"]  # the step after it never ran


async def test_a_chain_sent_to_a_node_without_the_actor_is_forwarded_whole() -> None:
    async with (
        run_cluster(node("front", workers=0), node("back", workers=0, actors=(ca.Pipeline,))) as c,
        Client(c.nodes[0].address, token=c.token) as client,
    ):

        async def routed() -> bool:
            return bool(await replicas(client, "Pipeline"))

        await until(routed)
        assert await client.request(CHAIN, timeout=20, return_all=True) == {"h": 2, "g": 4, "f": 1}
        assert await _calls(client, "Pipeline") == 1
