"""When the driver's node is lost, without a cluster: whom it dials, what it re-sends."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence

import pytest

from mpreg import ClusterUnavailable, Command
from mpreg.driver.failover import (
    Members,
    dial_first,
    hold_for_resend,
    inline_results,
    resend_batch,
    spec_to_send,
)
from mpreg.driver.futures import Future
from mpreg.driver.outbox import PendingRequest
from mpreg.driver.planner import plan_request
from mpreg.driver.requests import Collector, TaskIds, build_batch, task_spec
from mpreg.protocol.codec import dumps_value, loads_value
from mpreg.protocol.messages import SubmitBatch, TaskSpec
from mpreg.protocol.refs import DepRef


class Owner:
    """Stands in for the Client a Future belongs to."""

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == -1

    def cancel_futures(self, futures: Sequence[Future]) -> None:
        pass

    def _release_later(self, task_id: int) -> None:
        pass


def _batch(*commands: Command, retries: int = 3, first: int = 1) -> SubmitBatch:
    ids = TaskIds()
    ids.next_id = first
    batch, _ = build_batch(commands, ids=ids, return_all=False, retries=retries, futures=None)
    return batch


def _future(task_id: int, *args: object, retries: int = 3, generation: int = 1) -> Future:
    """A submitted future of ``echo(*args)``; Future arguments become dependencies."""
    future = Future(Owner(), task_id, f"echo#{task_id}")
    deps: list[Future] = []

    def link(value: object) -> int | None:
        if isinstance(value, Future):
            deps.append(value)
            return value.task_id
        return None

    plan = plan_request(
        [Command(future.command, "echo", list(args))], first_task_id=task_id, futures=link
    )
    future.spec = task_spec(plan.tasks[0], retries, keep=True)
    future.deps = tuple(deps)
    future.generation = generation
    return future


def _args(spec: TaskSpec) -> object:
    return loads_value(spec.args)


# --- whom to dial -------------------------------------------------------------------


def test_after_a_loss_the_announced_members_come_first_and_the_lost_node_last() -> None:
    members = Members("a:1")
    members.update(("a:1", "b:2", "c:3"))
    assert members.addresses == ("a:1", "b:2", "c:3")
    assert members.order_after("a:1") == ["b:2", "c:3", "a:1"]
    # Connected to b later: b's list no longer names a (it is gone), the first address stays known.
    members.update(("b:2", "c:3"))
    assert members.addresses == ("a:1", "b:2", "c:3")
    assert members.order_after("b:2") == ["c:3", "a:1", "b:2"]


async def test_dial_first_goes_down_the_list_until_one_answers() -> None:
    dialled: list[str] = []

    async def dial(address: str, timeout: float) -> str:
        dialled.append(address)
        if address != "c:3":
            raise ClusterUnavailable(f"cannot connect to {address}")
        return f"conn to {address}"

    conn, address = await dial_first(lambda: ["b:2", "c:3", "a:1"], dial, timeout=5)
    assert (conn, address) == ("conn to c:3", "c:3")
    assert dialled == ["b:2", "c:3"]


async def test_dial_first_gives_up_after_its_timeout_naming_every_address_tried() -> None:
    rounds = 0

    async def dial(address: str, timeout: float) -> str:
        assert timeout <= 2.0
        raise ClusterUnavailable(f"cannot connect to {address}")

    def order() -> list[str]:
        nonlocal rounds
        rounds += 1
        return ["b:2", "a:1"]

    started = time.monotonic()
    with pytest.raises(ClusterUnavailable) as caught:
        await dial_first(order, dial, timeout=0.3)
    assert 0.3 <= time.monotonic() - started < 1.5
    assert "within 0.3s" in str(caught.value)
    assert "b:2" in str(caught.value) and "a:1" in str(caught.value)
    assert rounds >= 2  # it kept trying, pausing between rounds


# --- requests ------------------------------------------------------------------------


def test_a_lost_request_is_resent_whole_with_one_retry_used() -> None:
    batch = _batch(Command("a", "echo", [1]), Command("b", "echo", ["a"]), retries=2)
    again, why = resend_batch(batch)
    assert why == "" and again is not None
    assert again.batch_id == batch.batch_id
    assert [s.task_id for s in again.tasks] == [s.task_id for s in batch.tasks]
    assert [s.retries for s in again.tasks] == [1, 1]


def test_a_lost_request_with_a_task_that_must_not_repeat_is_not_resent() -> None:
    again, why = resend_batch(_batch(Command("once", "echo", [1]), retries=0))
    assert again is None
    assert "'once' must not repeat (retries=0)" in why


def test_a_lost_request_using_a_future_held_on_that_node_is_not_resent() -> None:
    earlier = _future(1, "x")
    ids = TaskIds()
    ids.next_id = 5
    batch, _ = build_batch(
        [Command("uses", "echo", [earlier])],
        ids=ids,
        return_all=False,
        retries=3,
        futures=lambda v: v.task_id if isinstance(v, Future) else None,
    )
    again, why = resend_batch(batch)
    assert again is None and "future held on that node" in why


async def test_hold_for_resend_keeps_what_may_repeat_and_fails_the_rest() -> None:
    loop = asyncio.get_running_loop()
    sent = PendingRequest(Collector({1: "a"}), _batch(Command("a", "echo", [1])), loop)
    sent.sent = True
    once = PendingRequest(
        Collector({2: "b"}), _batch(Command("b", "echo", [1]), first=2, retries=0), loop
    )
    once.sent = True
    unsent = PendingRequest(Collector({3: "c"}), _batch(Command("c", "echo", [1]), first=3), loop)
    finished = _future(10, "done")
    finished._finish("done")
    running = _future(11, "x")
    must_not_repeat = _future(12, "y", retries=0)
    on_running = _future(13, running)
    on_finished = _future(14, finished)

    resend, failed = hold_for_resend(
        [sent, once, unsent, finished, running, must_not_repeat, on_running, on_finished], "a:1"
    )

    assert resend == [sent] and sent.batch.tasks[0].retries == 2
    assert unsent.batch.tasks[0].retries == 3  # not out yet: its request() sends it as it is
    errors = {id(w): str(e) for w, e in failed}
    assert set(errors) == {id(once), id(must_not_repeat), id(on_running)}
    assert "lost node a:1 while the request ran" in errors[id(once)]
    assert "must not repeat (retries=0)" in errors[id(once)]
    assert "must not repeat (retries=0)" in errors[id(must_not_repeat)]
    assert "its argument echo#11 was unfinished there too" in errors[id(on_running)]
    for again in (running, on_finished):  # sent again, with one retry used
        assert again.generation == 0
        assert again.spec is not None and again.spec.retries == 2
    assert finished.generation == 1  # finished futures stay as they are


def test_an_argument_future_finished_on_a_lost_node_goes_by_value() -> None:
    finished = _future(1, "x", generation=1)
    finished._finish({"v": 42})
    user = _future(2, [finished, "k"], generation=0)
    assert user.spec is not None and user.spec.deps == (1,)
    assert _args(user.spec) == (([DepRef(1), "k"],), {})

    spec = spec_to_send(user, generation=3)

    assert spec.deps == ()
    assert _args(spec) == (([{"v": 42}, "k"],), {})
    assert user.deps == () and user.spec is spec


def test_an_argument_future_on_the_node_in_use_stays_a_reference() -> None:
    resent = _future(1, "x", generation=3)
    user = _future(2, resent, generation=0)
    spec = spec_to_send(user, generation=3)
    assert spec.deps == (1,) and _args(spec) == ((DepRef(1),), {})


def test_an_argument_future_lost_unfinished_or_failed_fails_its_user() -> None:
    lost = _future(1, "x", generation=1)
    with pytest.raises(ClusterUnavailable, match="was lost with its node unfinished"):
        spec_to_send(_future(2, lost, generation=0), generation=3)
    failed = _future(3, "x", generation=1)
    failed._fail(ValueError("boom"))
    with pytest.raises(ValueError, match="boom"):
        spec_to_send(_future(4, failed, generation=0), generation=3)


def test_inline_results_replaces_only_the_given_references() -> None:
    spec = TaskSpec(
        task_id=9,
        name="u",
        fun="echo",
        datasets=frozenset(),
        args=dumps_value(((DepRef(1), [DepRef(2)]), {"k": DepRef(1)})),
        deps=(1, 2),
        want_result=True,
        keep=True,
    )
    inlined = inline_results(spec, {1: "one"})
    assert inlined.deps == (2,)
    assert _args(inlined) == (("one", [DepRef(2)]), {"k": "one"})
