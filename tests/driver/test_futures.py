"""mpreg.Future and waiting on many, without a cluster: a fake owner settles them from a thread."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator, Sequence

import pytest

import mpreg
from mpreg.driver.futures import Future


class FakeClient:
    """Stands in for the Client: records what it was asked to cancel."""

    def __init__(self) -> None:
        self.cancelled: list[list[int]] = []
        self.loop_thread = 0

    def on_loop_thread(self) -> bool:
        return threading.get_ident() == self.loop_thread

    def cancel_futures(self, futures: Sequence[Future]) -> None:
        self.cancelled.append([f.task_id for f in futures])

    def _release_later(self, task_id: int) -> None:
        pass


@pytest.fixture
def owner() -> FakeClient:
    return FakeClient()


def _futures(owner: FakeClient, n: int) -> list[Future]:
    return [Future(owner, i + 1, f"f#{i + 1}") for i in range(n)]


def _remote(message: str) -> mpreg.RemoteError:
    return mpreg.RemoteError(command="f", exc_type="ValueError", message=message)


def _later(seconds: float, fn: object, *args: object) -> threading.Timer:
    timer = threading.Timer(seconds, fn, args)  # type: ignore[arg-type]
    timer.start()
    return timer


@pytest.fixture
def timers() -> Iterator[list[threading.Timer]]:
    started: list[threading.Timer] = []
    yield started
    for timer in started:
        timer.cancel()
        timer.join(5)


def test_result_waits_for_another_thread_to_settle_it(owner: FakeClient, timers: list) -> None:
    (f,) = _futures(owner, 1)
    assert not f.done()
    timers.append(_later(0.05, f._finish, 42))
    assert f.result(timeout=5) == 42
    assert f.done() and not f.cancelled() and f.exception() is None


def test_result_timeout_raises_deadline_exceeded_and_does_not_cancel(owner: FakeClient) -> None:
    (f,) = _futures(owner, 1)
    start = time.monotonic()
    with pytest.raises(mpreg.DeadlineExceeded):
        f.result(timeout=0.1)
    assert 0.09 <= time.monotonic() - start < 1
    assert not f.done() and owner.cancelled == []
    assert f._callbacks == []  # the waiter it added is gone
    f._finish("late")
    assert f.result() == "late"


def test_an_error_is_raised_by_result_and_returned_by_exception(owner: FakeClient) -> None:
    (f,) = _futures(owner, 1)
    error = _remote("boom")
    f._fail(error)
    assert f.exception() is error
    with pytest.raises(mpreg.RemoteError):
        f.result()


def test_cancel_settles_at_once_and_tells_the_owner_once(owner: FakeClient) -> None:
    (f,) = _futures(owner, 1)
    assert f.cancel() is True
    assert f.done() and f.cancelled()
    with pytest.raises(mpreg.TaskCancelled):
        f.result()
    with pytest.raises(mpreg.TaskCancelled):
        f.exception()
    assert f.cancel() is True  # already cancelled: as concurrent.futures
    assert owner.cancelled == [[1]]
    assert f._finish("too late") is False  # a late answer changes nothing
    with pytest.raises(mpreg.TaskCancelled):
        f.result()


def test_cancel_after_it_finished_returns_false(owner: FakeClient) -> None:
    done, failed = _futures(owner, 2)
    done._finish(1)
    failed._fail(_remote("x"))
    assert done.cancel() is False and failed.cancel() is False
    assert owner.cancelled == [] and done.result() == 1


def test_mpreg_cancel_sends_one_message_per_client_for_the_unfinished_ones() -> None:
    a, b = FakeClient(), FakeClient()
    fa1, fa2 = _futures(a, 2)
    (fb,) = _futures(b, 1)
    fa2._finish("kept")
    mpreg.cancel([fa1, fa2, fb])
    assert a.cancelled == [[1]] and b.cancelled == [[1]]
    assert fa1.cancelled() and fb.cancelled() and fa2.result() == "kept"


def test_done_callbacks_run_once_and_at_once_when_already_done(
    owner: FakeClient, caplog: pytest.LogCaptureFixture
) -> None:
    (f,) = _futures(owner, 1)
    seen: list[object] = []

    def broken(_: Future) -> None:
        raise RuntimeError("callback bug")

    f.add_done_callback(seen.append)
    f.add_done_callback(broken)
    f.add_done_callback(lambda fut: seen.append(fut.result()))
    with caplog.at_level(logging.ERROR):
        f._finish(7)
        f._finish(8)
    assert seen == [f, 7]
    assert "callback bug" in caplog.text
    f.add_done_callback(seen.append)  # already done: called here and now
    assert seen == [f, 7, f]


def test_cancel_runs_the_callbacks(owner: FakeClient) -> None:
    (f,) = _futures(owner, 1)
    seen: list[bool] = []
    f.add_done_callback(lambda fut: seen.append(fut.cancelled()))
    f.cancel()
    assert seen == [True]


def test_as_completed_yields_in_finishing_order(owner: FakeClient, timers: list) -> None:
    first, second, third, already = _futures(owner, 4)
    already._finish("a")
    timers.append(_later(0.15, second._finish, "b"))
    timers.append(_later(0.05, third._finish, "c"))
    timers.append(_later(0.25, first._finish, "d"))
    order = [f.result() for f in mpreg.as_completed([first, second, third, already], timeout=5)]
    assert order == ["a", "c", "b", "d"]


def test_as_completed_raises_deadline_exceeded_with_some_pending(owner: FakeClient) -> None:
    quick, stuck = _futures(owner, 2)
    quick._finish(1)
    start = time.monotonic()
    iterator = mpreg.as_completed([quick, stuck], timeout=0.2)
    assert next(iterator) is quick
    with pytest.raises(mpreg.DeadlineExceeded, match="1 of 2"):
        next(iterator)
    assert 0.15 <= time.monotonic() - start < 1
    assert not stuck.cancelled() and stuck._callbacks == []


def test_wait_returns_done_and_pending_without_cancelling(owner: FakeClient, timers: list) -> None:
    quick, slow, never = _futures(owner, 3)
    timers.append(_later(0.05, quick._finish, 1))
    timers.append(_later(0.1, slow._finish, 2))
    done, pending = mpreg.wait([never, slow, quick], num_returns=2, timeout=5)
    assert done == [slow, quick] and pending == [never]
    done, pending = mpreg.wait([never, quick], num_returns=2, timeout=0.1)
    assert done == [quick] and pending == [never]
    assert not never.done() and owner.cancelled == []
    never._finish(3)
    assert mpreg.get(never) == 3


def test_wait_returns_at_most_num_returns(owner: FakeClient) -> None:
    futures = _futures(owner, 3)
    for f in futures:
        f._finish(0)
    assert mpreg.wait(futures, num_returns=1) == (futures[:1], futures[1:])
    with pytest.raises(mpreg.UsageError):
        mpreg.wait(futures, num_returns=-1)


def test_get_returns_in_order_and_fails_fast(owner: FakeClient, timers: list) -> None:
    a, b, c = _futures(owner, 3)
    timers.append(_later(0.1, a._finish, "a"))
    timers.append(_later(0.05, b._finish, "b"))
    assert mpreg.get([a, b]) == ["a", "b"]
    timers.append(_later(0.05, c._fail, _remote("kaput")))
    slow = Future(owner, 9, "slow")
    with pytest.raises(mpreg.RemoteError, match="kaput"):
        mpreg.get([slow, c], timeout=5)  # does not wait for ``slow`` first


def test_get_timeout_raises_deadline_exceeded_in_about_the_timeout(owner: FakeClient) -> None:
    (f,) = _futures(owner, 1)
    start = time.monotonic()
    with pytest.raises(mpreg.DeadlineExceeded):
        mpreg.get(f, timeout=0.2)
    assert 0.15 <= time.monotonic() - start < 1
    assert not f.done()


def test_blocking_on_the_loop_that_settles_it_is_refused(owner: FakeClient) -> None:
    (f,) = _futures(owner, 1)
    owner.loop_thread = threading.get_ident()
    with pytest.raises(mpreg.UsageError, match="await it"):
        f.result()
    with pytest.raises(mpreg.UsageError):
        mpreg.get(f)
    assert f._callbacks == []
    f._finish(1)
    assert f.result() == 1  # done: nothing to wait for


def test_await_on_any_loop_while_another_thread_settles_it(owner: FakeClient, timers: list) -> None:
    f, g = _futures(owner, 2)
    timers.append(_later(0.05, f._finish, "here"))

    async def main() -> object:
        waiting = asyncio.ensure_future(_await(g))
        await asyncio.sleep(0.01)  # ok-sleep: let the task start awaiting
        waiting.cancel()  # giving up awaiting does not cancel the call
        with pytest.raises(asyncio.CancelledError):
            await waiting
        return await f

    assert asyncio.run(main()) == "here"
    assert not g.done() and g._callbacks == []


async def _await(f: Future) -> object:
    return await f


def _interrupt_soon(timers: list[threading.Timer]) -> None:
    # Linux delivers a process-directed SIGINT to the main thread, as a terminal's ^C.
    timers.append(_later(0.1, os.kill, os.getpid(), signal.SIGINT))


def test_an_interrupt_in_result_cancels_the_call(owner: FakeClient, timers: list) -> None:
    (f,) = _futures(owner, 1)
    _interrupt_soon(timers)
    with pytest.raises(KeyboardInterrupt):
        f.result(timeout=10)
    assert f.cancelled() and owner.cancelled == [[1]]


def test_an_interrupt_in_get_cancels_the_unfinished_calls(owner: FakeClient, timers: list) -> None:
    done, slow, slower = _futures(owner, 3)
    done._finish(0)
    _interrupt_soon(timers)
    with pytest.raises(KeyboardInterrupt):
        mpreg.get([done, slow, slower], timeout=10)
    assert owner.cancelled == [[2, 3]] and done.result() == 0


def test_await_on_the_owners_loop_settled_here_or_cancelled_from_another_thread(
    owner: FakeClient, timers: list
) -> None:
    f, g, h = _futures(owner, 3)
    owner.loop_thread = threading.get_ident()  # this thread runs "the client's loop"

    async def main() -> object:
        asyncio.get_running_loop().call_later(0.02, f._finish, "here")
        timers.append(_later(0.05, g.cancel))  # cancel() from another thread
        both = asyncio.gather(_await(f), _await(f))
        with pytest.raises(mpreg.TaskCancelled):
            await g
        giving_up = asyncio.ensure_future(_await(h))
        await asyncio.sleep(0.01)  # ok-sleep: let the task start awaiting
        giving_up.cancel()
        with pytest.raises(asyncio.CancelledError):
            await giving_up
        return await both

    assert asyncio.run(main()) == ["here", "here"]
    assert not h.done() and h._woken == []
