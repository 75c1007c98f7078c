"""Waiting calls alone: FIFO per (function, datasets), oldest first, dead marks compacted."""

from __future__ import annotations

from dataclasses import dataclass

from mpreg.node.queues import CallQueues
from mpreg.protocol.messages import Endpoint


@dataclass
class Rec:
    seq: int
    waiting: bool = True


def _endpoint(funs: set[str], datasets: set[str]) -> Endpoint:
    return Endpoint("n/e", "n", "actor", frozenset(funs), frozenset(datasets))


def test_a_free_endpoint_takes_the_oldest_call_it_can_serve() -> None:
    queues: CallQueues[Rec] = CallQueues()
    queues.push(("g", frozenset()), Rec(1))
    queues.push(("f", frozenset({"d"})), Rec(2))
    queues.push(("f", frozenset()), Rec(3))
    only_f = _endpoint({"f"}, {"d"})
    assert [queues.pop_for(only_f).seq for _ in range(2)] == [2, 3]  # type: ignore[union-attr]
    assert queues.pop_for(only_f) is None and len(queues) == 1


def test_calls_that_stopped_waiting_are_skipped_and_compacted_away() -> None:
    queues: CallQueues[Rec] = CallQueues()
    records = [Rec(i) for i in range(3000)]
    for record in records:
        queues.push(("f", frozenset()), record)
    for record in records[:2000]:
        record.waiting = False
        queues.stopped_waiting()
    assert len(queues) == 1000
    assert queues._dead < 1024  # compacted once most of what it held was dead
    assert queues.pop_for(_endpoint({"f"}, set())).seq == 2000  # type: ignore[union-attr]
