"""Futures against a real embedded cluster: the sync facade and the async client.

None of these depends on the node acting on Cancel: a cancelled or expired
future settles in the driver at once whatever the node does.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import cluster_actors as ca
import pytest

import mpreg
from mpreg import Client, Command
from mpreg.driver import api
from mpreg.protocol.messages import Cancel, SubmitBatch, TaskSpec


@pytest.fixture
def embedded() -> Iterator[None]:
    # Two function workers: a slow call left running never blocks a quick one.
    mpreg.init(functions=[ca.add, ca.slow, ca.fail], workers=2)
    try:
        yield
    finally:
        mpreg.shutdown()


@pytest.fixture
def sent(embedded: None, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every message the facade's async client sends from now on."""
    runtime = api._runtime
    assert runtime is not None and runtime.client is not None
    conn = runtime.client._conn
    assert conn is not None
    messages: list[object] = []
    original = conn.send

    def record(message: object) -> None:
        messages.append(message)
        original(message)

    monkeypatch.setattr(conn, "send", record)
    return messages


def _eventually_sent(sent: list[object], message: object, within: float = 2.0) -> None:
    """Wait until the client sent ``message``: notices go out on its loop's next turn."""
    deadline = time.monotonic() + within
    while message not in sent:
        assert time.monotonic() < deadline, f"{message} was not sent: {sent}"
        time.sleep(0.005)  # ok-sleep: polling a list the client's thread appends to


def _specs(messages: list[object]) -> list[TaskSpec]:
    return [spec for m in messages if isinstance(m, SubmitBatch) for spec in m.tasks]


@pytest.mark.cluster
def test_result_with_a_timeout_raises_deadline_exceeded_and_leaves_the_call_running(
    embedded: None,
) -> None:
    f = mpreg.submit("slow", 0.8, "v")
    start = time.monotonic()
    with pytest.raises(mpreg.DeadlineExceeded):
        f.result(timeout=0.2)
    assert time.monotonic() - start < 0.6
    assert not f.done()
    assert f.result(timeout=10)["value"] == "v"
    assert f.done() and not f.cancelled()


@pytest.mark.cluster
def test_cancel_settles_a_slow_call_at_once_and_sends_cancel(sent: list[object]) -> None:
    f = mpreg.submit("slow", 1.5)
    start = time.monotonic()
    assert f.cancel() is True
    with pytest.raises(mpreg.TaskCancelled):
        f.result()
    with pytest.raises(mpreg.TaskCancelled):
        mpreg.get(f)
    assert time.monotonic() - start < 0.5
    quick = mpreg.submit("add", 1, 2)
    assert quick.result(timeout=10) == 3
    assert quick.cancel() is False
    _eventually_sent(sent, Cancel((f.task_id,)))


@pytest.mark.cluster
def test_a_cancelled_future_cannot_feed_another_call(embedded: None) -> None:
    f = mpreg.submit("slow", 1.5)
    mpreg.cancel([f])
    with pytest.raises(mpreg.TaskCancelled):
        mpreg.submit("add", f, 1)


@pytest.mark.cluster
def test_exception_and_done_callbacks(embedded: None) -> None:
    failing = mpreg.submit("fail", "kaput")
    error = failing.exception(timeout=10)
    assert isinstance(error, mpreg.RemoteError) and "kaput" in str(error)
    fine = mpreg.submit("add", 2, 2)
    called = threading.Event()
    seen: list[object] = []

    def callback(future: mpreg.Future) -> None:
        seen.append(future.result())
        called.set()

    fine.add_done_callback(callback)
    assert called.wait(10)
    assert fine.exception() is None and seen == [4]
    fine.add_done_callback(callback)  # already done: runs at once, here
    assert seen == [4, 4]


@pytest.mark.cluster
def test_as_completed_yields_in_finishing_order_and_times_out(embedded: None) -> None:
    late = mpreg.submit("slow", 0.8, "late")
    early = mpreg.submit("slow", 0.1, "early")
    order = [f.result()["value"] for f in mpreg.as_completed([late, early], timeout=10)]
    assert order == ["early", "late"]
    stuck = mpreg.submit("slow", 1.0)
    start = time.monotonic()
    with pytest.raises(mpreg.DeadlineExceeded):
        list(mpreg.as_completed([stuck], timeout=0.2))
    assert time.monotonic() - start < 0.6
    assert not stuck.cancelled()


@pytest.mark.cluster
def test_wait_never_cancels_what_it_returns_as_pending(embedded: None) -> None:
    quick = mpreg.submit("add", 1, 1)
    slow = mpreg.submit("slow", 0.8, "still here")
    done, pending = mpreg.wait([quick, slow], num_returns=1, timeout=5)
    assert done == [quick] and pending == [slow]
    assert not slow.cancelled()
    assert mpreg.get(slow, timeout=10)["value"] == "still here"


@pytest.mark.cluster
def test_get_with_a_timeout_raises_deadline_exceeded_in_about_the_timeout(
    embedded: None,
) -> None:
    slow = mpreg.submit("slow", 1.2)
    start = time.monotonic()
    with pytest.raises(mpreg.DeadlineExceeded):
        mpreg.get(slow, timeout=0.3)
    assert 0.25 <= time.monotonic() - start < 0.8
    with pytest.raises(mpreg.DeadlineExceeded):
        mpreg.get([mpreg.submit("add", 1, 1), slow], timeout=0.1)
    assert mpreg.get(mpreg.submit("add", 1, 1)) == 2  # no timeout: as long as it takes


@pytest.mark.cluster
def test_submit_options_reach_the_task_spec_and_kwargs_reach_the_function(
    sent: list[object],
) -> None:
    assert mpreg.get(mpreg.submit("add", 1, retries=0, b=2)) == 3
    before = time.time()
    assert mpreg.get(mpreg.submit("add", 2, 2, timeout=30)) == 4
    first, second = _specs(sent)
    assert first.retries == 0 and first.deadline == 0.0
    assert second.retries == 3 and before + 29 < second.deadline < time.time() + 31


@pytest.mark.cluster
def test_submit_timeout_settles_the_future_at_its_deadline(sent: list[object]) -> None:
    f = mpreg.submit("slow", 1.2, timeout=0.3)
    start = time.monotonic()
    with pytest.raises(mpreg.DeadlineExceeded) as caught:
        f.result(timeout=10)
    assert 0.25 <= time.monotonic() - start < 0.8
    # The node drops the call at the same deadline: whichever tells the future first
    # wins the race. Only the driver's own timer needs to tell the node to drop it.
    if "passed its deadline" not in str(caught.value):
        _eventually_sent(sent, Cancel((f.task_id,)))


@pytest.mark.cluster
async def test_async_futures_await_cancel_and_a_cancelled_request_cancels_its_tasks(
    client: Client,
) -> None:
    assert await client.submit("add", 1, 2) == 3
    slow = client.submit("slow", 1.5)
    assert slow.cancel()
    with pytest.raises(mpreg.TaskCancelled):
        await slow
    conn = client._conn
    assert conn is not None
    messages: list[object] = []
    batch_out = asyncio.Event()
    original = conn.send

    def record(message: object) -> None:
        messages.append(message)
        batch_out.set()
        original(message)

    conn.send = record  # type: ignore[method-assign]
    request = asyncio.ensure_future(client.request([Command("s", "slow", [1.5])]))
    await asyncio.wait_for(batch_out.wait(), 10)
    request.cancel()
    with pytest.raises(asyncio.CancelledError):
        await request
    (spec,) = _specs(messages)
    async with asyncio.timeout(2):  # the notice goes out on the loop's next turn
        while Cancel((spec.task_id,)) not in messages:  # noqa: ASYNC110 - a list the loop fills
            await asyncio.sleep(0.005)  # ok-sleep: polling, bounded by the timeout
