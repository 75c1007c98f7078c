"""Queue depth per endpoint: the waiting calls it could take, read at status time."""

from __future__ import annotations

from dataclasses import dataclass

from mpreg.node.queues import CallQueues
from mpreg.protocol.messages import Endpoint


@dataclass
class Rec:
    seq: int
    waiting: bool = True


def _endpoint(endpoint_id: str, funs: set[str], datasets: set[str]) -> Endpoint:
    return Endpoint(endpoint_id, "n", "actor", frozenset(funs), frozenset(datasets))


def test_an_endpoint_counts_the_calls_it_could_take_and_its_pinned_ones() -> None:
    queues: CallQueues[Rec] = CallQueues()
    queues.push(("f", frozenset({"a"})), Rec(1))
    queues.push(("f", frozenset()), Rec(2))
    queues.push(("f", frozenset({"b"})), Rec(3))  # needs dataset b
    queues.push(("g", frozenset()), Rec(4))  # another function
    queues.push_pinned("n/e1", Rec(5))
    queues.push_pinned("n/e2", Rec(6))
    cancelled = Rec(7)
    queues.push(("f", frozenset()), cancelled)
    cancelled.waiting = False
    queues.stopped_waiting()
    assert queues.waiting_count(_endpoint("n/e1", {"f"}, {"a"})) == 3  # 1, 2 and pinned 5
    assert queues.waiting_count(_endpoint("n/e2", {"f", "g"}, {"a", "b"})) == 5
    assert queues.waiting_count(_endpoint("n/e3", {"h"}, set())) == 0
