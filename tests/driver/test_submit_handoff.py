"""The handoff of futures prepared in other threads: each started once, in order, few wakeups."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, cast

import pytest

from mpreg.driver.futures import Future
from mpreg.driver.submitting import Handoff
from mpreg.errors import ClusterUnavailable


def test_futures_from_four_threads_start_once_each_in_their_threads_order() -> None:
    started: list[tuple[int, int]] = []
    loop = asyncio.new_event_loop()
    runner = threading.Thread(target=loop.run_forever)
    runner.start()
    handoff = Handoff(lambda future, timeout: started.append(cast(Any, future)))
    handoff.loop = loop
    drains = 0
    real_drain = handoff._drain

    def counted() -> None:
        nonlocal drains
        drains += 1
        real_drain()

    handoff._drain = counted  # type: ignore[method-assign]
    try:

        def burst(thread: int) -> None:
            for i in range(500):
                handoff.hand(cast(Future, (thread, i)), None)

        threads = [threading.Thread(target=burst, args=(t,)) for t in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result(10)  # drained by now
    finally:
        loop.call_soon_threadsafe(loop.stop)
        runner.join(10)
        loop.close()
    assert sorted(started) == [(t, i) for t in range(4) for i in range(500)]
    for thread in range(4):
        assert [i for t, i in started if t == thread] == list(range(500))
    assert drains < 2000  # bursts share wakeups


def test_a_closed_loop_refuses_the_handoff() -> None:
    loop = asyncio.new_event_loop()
    loop.close()
    handoff = Handoff(lambda future, timeout: None)
    handoff.loop = loop
    with pytest.raises(ClusterUnavailable, match="closed"):
        handoff.hand(cast(Future, object()), None)
