"""Held results through the sync API a script or notebook uses: get, result, put, as_completed."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import data_support as ds
import numpy as np
import pytest

import mpreg
from mpreg import UsageError

pytestmark = pytest.mark.cluster

COUNT = 1_000_000  # 8 MB arrays: held, not pushed


@pytest.fixture
def embedded() -> Iterator[None]:
    mpreg.init(functions=ds.FUNCTIONS)
    try:
        yield
    finally:
        mpreg.shutdown()


def test_get_and_result_fetch_held_values(embedded: None) -> None:
    made = mpreg.submit("make", COUNT)
    doubled = mpreg.submit("double", made)
    small = mpreg.submit("total", doubled)
    assert mpreg.get(small, timeout=30) == float(np.arange(COUNT).sum() * 2)
    assert doubled.held > 0 and made.held > 0
    first, second = mpreg.get([made, doubled], timeout=30)
    np.testing.assert_array_equal(second, first * 2)
    assert made.result(timeout=5) is first  # fetched once, then kept here
    done = list(mpreg.as_completed([mpreg.submit("make", COUNT) for _ in range(3)], timeout=30))
    assert all(f.result(timeout=30).shape == (COUNT,) for f in done)


def test_put_through_the_sync_api(embedded: None) -> None:
    table = np.ones(COUNT)
    stored = mpreg.put(table)
    assert (
        mpreg.get([mpreg.submit("nbytes", stored) for _ in range(10)], timeout=30)
        == [table.nbytes] * 10
    )
    assert mpreg.get(stored, timeout=5) is table


def test_a_held_value_cannot_be_waited_for_on_the_loop_that_fetches_it(embedded: None) -> None:
    seen: list[BaseException] = []
    called = threading.Event()

    def on_done(future: mpreg.Future) -> None:  # runs on the client's loop thread
        try:
            future.result()
        except UsageError as exc:
            seen.append(exc)
        called.set()

    made = mpreg.submit("make", COUNT)
    made.add_done_callback(on_done)
    assert called.wait(30)
    assert seen and "await it" in str(seen[0])
    assert made.result(timeout=30).shape == (COUNT,)  # from this thread it is fetched
