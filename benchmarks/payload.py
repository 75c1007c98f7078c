"""The user code every system runs: trivial on purpose, so the figures are overhead.

Imported by worker processes of every system; imports nothing heavy (an array
argument brings numpy in when it is unpickled).
"""

from __future__ import annotations

from typing import Any


class Model:
    """A long-lived model process: a dataset actor (mpreg), an actor (Ray, Dask)."""

    def predict(self, x: Any) -> Any:
        return x

    def echo_array(self, array: Any) -> Any:
        return array

    def nbytes(self, array: Any) -> int:
        return int(array.nbytes)

    # The chain on an actor (workload chain-actor): the same three steps as methods.
    def step_inc(self, x: int) -> int:
        return inc(x)

    def step_dbl(self, x: int) -> int:
        return dbl(x)

    def step_dec(self, x: int) -> int:
        return dec(x)


class Shard:
    """One of two replicas a fan-out spreads over."""

    def work(self, x: int) -> int:
        return x


# The three steps of the chain: dec(dbl(inc(x))) == 2 * x - 1.
def inc(x: int) -> int:
    return x + 1


def dbl(x: int) -> int:
    return 2 * x


def dec(x: int) -> int:
    return x - 3


def chain_expected(x: int) -> int:
    return 2 * (x + 1) - 3


def work(x: int) -> int:
    """The fan-out task (Dask spreads tasks over its two worker processes)."""
    return x
