"""mpreg.submit from many threads at once: prepared in each caller's thread, sent by the loop."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import cluster_actors as ca
import pytest

import mpreg
from mpreg import TaskCancelled

pytestmark = pytest.mark.cluster


@pytest.fixture
def embedded() -> Iterator[None]:
    mpreg.init(functions=[ca.add, ca.slow], workers=2)
    try:
        yield
    finally:
        mpreg.shutdown()


def test_submits_from_four_threads_all_get_their_own_answers(embedded: None) -> None:
    answers: dict[int, list[int]] = {}

    def burst(thread: int) -> None:
        futures = [mpreg.submit("add", thread * 1000, i) for i in range(300)]
        answers[thread] = mpreg.get(futures, timeout=60)

    threads = [threading.Thread(target=burst, args=(t,)) for t in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(90)
    assert answers == {t: [t * 1000 + i for i in range(300)] for t in range(4)}


def test_a_future_passed_on_at_once_and_one_cancelled_at_once(embedded: None) -> None:
    first = mpreg.submit("add", 1, 2)
    assert mpreg.submit("add", first, 10).result(timeout=30) == 13  # before it was sent even
    doomed = mpreg.submit("slow", 5.0)
    assert doomed.cancel()
    with pytest.raises(TaskCancelled):
        doomed.result(timeout=5)
    assert mpreg.submit("add", 2, 2).result(timeout=30) == 4
