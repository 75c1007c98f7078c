"""Bad requests fail whole and early; user exceptions come back typed and complete."""

from __future__ import annotations

import asyncio
import threading

import pytest

from mpreg import (
    Client,
    Command,
    DeadlineExceeded,
    PlanError,
    RemoteError,
    SerializationError,
)

pytestmark = pytest.mark.cluster


async def _recorded(client: Client) -> list[object]:
    """What every Iris replica recorded: asks until each replica has answered."""
    replicas = {a.pid for a in (await client.status()).actors if a.label == "Iris"}
    by_pid: dict[int, list[object]] = {}
    async with asyncio.timeout(10):
        while set(by_pid) != replicas:
            state = (await client.request([Command("s", "state", [], ["iris"])]))["s"]
            by_pid[state["pid"]] = state["seen"]
    return [item for seen in by_pid.values() for item in seen]


async def test_cycle_is_a_plan_error_naming_a_command_on_it(client: Client) -> None:
    with pytest.raises(PlanError) as info:
        await client.request(
            [Command("x", "echo", ["y"]), Command("y", "echo", ["x"]), Command("z", "echo", [1])]
        )
    assert info.value.command in {"x", "y"}


async def test_duplicate_name_is_a_plan_error(client: Client) -> None:
    with pytest.raises(PlanError) as info:
        await client.request([Command("x", "record", [1], ["iris"]), Command("x", "echo", [2])])
    assert info.value.command == "x"
    assert await _recorded(client) == []


async def test_user_exception_is_a_remote_error_and_dependents_do_not_run(client: Client) -> None:
    with pytest.raises(RemoteError) as info:
        await client.request(
            [
                Command("boom", "fail", ["the model is on fire"]),
                Command("after", "record", ["boom"], ["iris"]),
            ]
        )
    error = info.value
    assert error.command == "boom"
    assert error.exc_type == "ValueError"
    assert error.message == "the model is on fire"
    assert "in fail" in error.remote_traceback and "ValueError" in error.remote_traceback
    assert error.actor.startswith(error.node + "/") and error.node.startswith("solo-")
    assert "mpreg/actors" not in error.remote_traceback
    assert await _recorded(client) == []


async def test_failure_does_not_hang_a_request_with_an_independent_slow_branch(
    client: Client,
) -> None:
    with pytest.raises(RemoteError):
        await client.request(
            [Command("boom", "fail", ["x"]), Command("slowpoke", "slow", [0.2, 1])], timeout=10
        )
    assert await client.request([Command("e", "echo", [1])]) == {"e": 1}


async def test_unpicklable_argument_fails_before_anything_is_sent(client: Client) -> None:
    with pytest.raises(SerializationError) as info:
        await client.request(
            [Command("ok", "record", [1], ["iris"]), Command("bad", "echo", [threading.Lock()])]
        )
    assert info.value.command == "bad"
    assert await _recorded(client) == []


async def test_unpicklable_result_is_a_clear_error_and_the_node_keeps_serving(
    client: Client,
) -> None:
    with pytest.raises(SerializationError) as info:
        await client.request([Command("lock", "lock_result", [])])
    assert info.value.command == "lock"
    assert "lock" in str(info.value)
    assert await client.request([Command("e", "echo", ["fine"])]) == {"e": "fine"}


async def test_deadline_is_a_typed_timeout(client: Client) -> None:
    with pytest.raises(DeadlineExceeded) as info:
        await client.request([Command("s", "slow", [2.0])], timeout=0.3)
    assert isinstance(info.value, TimeoutError)
    assert "'s'" in str(info.value)
    assert await client.request([Command("e", "echo", [1])]) == {"e": 1}


async def test_bad_command_shapes_are_plan_errors(client: Client) -> None:
    with pytest.raises(PlanError, match="iris"):
        await client.request([Command("p", "who", [], "iris")])  # type: ignore[arg-type]
    with pytest.raises(PlanError):
        await client.request([])


async def test_a_function_that_prints_a_lot_does_not_wedge_its_worker(client: Client) -> None:
    for i in range(20):
        assert await client.request([Command("p", "chatty", [i])], timeout=10) == {"p": i}


async def test_sys_exit_in_user_code_is_a_remote_error_not_a_dead_worker(client: Client) -> None:
    before = {e.pid for e in (await client.status()).endpoints}
    with pytest.raises(RemoteError) as info:
        await client.request([Command("x", "exits", [3])], timeout=10)
    assert info.value.exc_type == "SystemExit"
    assert {e.pid for e in (await client.status()).endpoints} == before
    assert await client.request([Command("e", "echo", [1])]) == {"e": 1}


async def test_an_async_method_raising_cancelled_error_still_answers(client: Client) -> None:
    with pytest.raises(RemoteError) as info:
        await client.request([Command("c", "cancels", [], ["iris"])], timeout=10)
    assert info.value.exc_type == "CancelledError"
    status = await client.status()
    assert sum(e.in_flight for e in status.endpoints) == 0


async def test_submit_with_a_bare_string_dataset_is_a_plan_error(client: Client) -> None:
    with pytest.raises(PlanError, match=r"\['iris'\]"):
        client.submit("who", datasets="iris")
