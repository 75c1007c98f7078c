"""The dispatcher alone: routing, retries and parking, over a fake send (no sockets)."""

from __future__ import annotations

import asyncio
import mmap
import time
from typing import Any

from mpreg.node.calls import InFlight
from mpreg.node.dispatch import MAX_FREE_MOVES, CallDispatcher
from mpreg.node.routing import RoutingTable
from mpreg.protocol.codec import Blob, dumps_value
from mpreg.protocol.messages import Call, Endpoint, ErrorInfo, Held

ARGS = dumps_value(((1,), {}))


def _endpoint(name: str) -> Endpoint:
    return Endpoint(f"n/{name}", "n", "actor", frozenset({"f"}), frozenset({"d"}), name)


class Harness:
    def __init__(self, *names: str, reachable: set[str] | None = None) -> None:
        self.routes = RoutingTable()
        for name in names:
            self.routes.add(_endpoint(name))
        self.reachable = reachable
        self.sent: list[tuple[str, Call]] = []
        self.done: list[tuple[Any, ErrorInfo | None, str]] = []
        self.dispatcher = CallDispatcher(self.routes, self._send)

    def _send(self, endpoint: Endpoint, call: Call, hold: bool = False) -> bool:
        if self.reachable is not None and endpoint.label not in self.reachable:
            return False
        self.sent.append((endpoint.label, call))
        return True

    def submit(self, retries: int = 3) -> None:
        self.dispatcher.submit(
            fun="f",
            datasets=frozenset({"d"}),
            args=ARGS,
            deps=(),
            command="c",
            retries=retries,
            on_done=lambda r, e, w: self.done.append((r, e, w)),
        )

    def answer_last(self, error: ErrorInfo | None = None) -> None:
        _, call = self.sent[-1]
        self.dispatcher.complete(call.call_id, None if error else ARGS, error)


DIED = ErrorInfo(kind="actor-died", message="gone")


async def test_a_call_whose_replica_died_is_retried_on_another_with_a_fresh_id() -> None:
    h = Harness("a", "b")
    h.submit()
    first_label, first_call = h.sent[0]
    h.answer_last(DIED)
    second_label, second_call = h.sent[1]
    assert second_label != first_label
    assert second_call.call_id != first_call.call_id
    h.dispatcher.complete(first_call.call_id, ARGS, None)  # a late answer: ignored
    assert h.done == []
    h.answer_last()
    assert [(e, w) for _, e, w in h.done] == [(None, f"n/{second_label}")]


async def test_user_errors_are_not_retried() -> None:
    h = Harness("a", "b")
    h.submit()
    h.answer_last(ErrorInfo(kind="user", message="boom"))
    assert len(h.sent) == 1
    assert h.done[0][1] is not None and h.done[0][1].kind == "user"


async def test_retries_run_out_into_an_actor_died_error() -> None:
    h = Harness("a")
    h.submit(retries=1)
    h.answer_last(DIED)  # retried on the same (only) replica
    h.answer_last(DIED)
    assert len(h.sent) == 2
    assert h.done[0][1] is not None and h.done[0][1].kind == "actor-died"


async def test_an_unreachable_replica_is_skipped_without_looping() -> None:
    h = Harness("a", "b", reachable={"b"})
    for _ in range(10):
        h.submit()
    assert {label for label, _ in h.sent} == {"b"}


async def test_a_retry_waits_for_a_restarted_replica() -> None:
    h = Harness("a")
    h.submit()
    h.routes.suspend("n/a")  # the process died: its endpoint restarts
    h.answer_last(DIED)
    assert h.done == [] and len(h.dispatcher.parked) == 1
    h.routes.resume("n/a")  # restarted
    h.dispatcher.endpoints_added()
    assert len(h.sent) == 2 and not h.dispatcher.parked
    h.answer_last()
    assert h.done[0][1] is None


async def test_nothing_to_route_to_is_a_no_route_error() -> None:
    h = Harness()
    h.submit()
    assert h.done[0][1] is not None and h.done[0][1].kind == "no-route"


# --- the window, the queue, deadlines and cancels ----------------------------------


class Windowed(Harness):
    """A harness whose dispatcher keeps at most ``window`` calls per endpoint."""

    def __init__(self, *names: str, window: int = 2) -> None:
        super().__init__(*names)
        self.cancels: list[tuple[str, int]] = []
        self.dispatcher = CallDispatcher(
            self.routes,
            self._send,
            lambda ep, call_id: self.cancels.append((ep.label, call_id)),
            window=window,
        )
        self.handles: list[InFlight] = []

    def submit(self, retries: int = 3, deadline: float = 0.0) -> None:  # type: ignore[override]
        self.handles.append(
            self.dispatcher.submit(
                fun="f",
                datasets=frozenset({"d"}),
                args=ARGS,
                deps=(),
                command=f"c{len(self.handles)}",
                retries=retries,
                on_done=lambda r, e, w: self.done.append((r, e, w)),
                deadline=deadline,
            )
        )

    def answer(self, index: int) -> None:
        self.dispatcher.complete(self.sent[index][1].call_id, ARGS, None)


async def test_calls_past_the_window_wait_and_a_freed_slot_takes_the_oldest() -> None:
    h = Windowed("a", window=2)
    for _ in range(5):
        h.submit()
    assert [c.command for _, c in h.sent] == ["c0", "c1"] and h.dispatcher.queued == 3
    h.answer(0)
    assert [c.command for _, c in h.sent] == ["c0", "c1", "c2"] and h.dispatcher.queued == 2


async def test_a_cancelled_queued_call_is_never_sent_and_a_running_one_is_cancelled_there() -> None:
    h = Windowed("a", window=1)
    h.submit()
    h.submit()
    h.handles[1].cancel()  # queued: dropped
    h.handles[0].cancel()  # sent: cancelled where it runs
    assert h.cancels == [("a", h.sent[0][1].call_id)]
    assert [e.kind for _, e, _ in h.done if e] == ["cancelled", "cancelled"]
    assert h.dispatcher.queued == 0 and len(h.sent) == 1
    h.submit()
    assert len(h.sent) == 1  # the cancelled call holds its slot until its process answers
    h.answer(0)  # the late answer: not delivered again, but the slot frees
    assert len(h.done) == 2 and [c.command for _, c in h.sent] == ["c0", "c2"]


async def test_a_call_past_its_deadline_is_answered_at_once_and_dropped_from_the_queue() -> None:
    h = Windowed("a", window=1)
    h.submit()
    h.submit(deadline=time.time() + 0.05)
    h.submit(deadline=time.time() - 1)  # expired before it was submitted
    assert [e.kind for _, e, _ in h.done if e] == ["deadline"]
    await asyncio.sleep(0.1)  # ok-sleep: the queued call's deadline passes
    assert [e.kind for _, e, _ in h.done if e] == ["deadline", "deadline"]
    assert h.dispatcher.queued == 0
    h.answer(0)
    assert len(h.sent) == 1  # nothing left to send: the expired calls never go out


async def test_cancelled_queued_calls_let_go_of_their_payload() -> None:
    h = Windowed("a", window=1)
    for _ in range(3):
        h.submit()
    h.handles[1].cancel()
    assert h.handles[1].call.args is not ARGS  # the queue keeps a mark, not the arguments


async def test_a_dead_process_charges_a_retry_only_to_the_call_it_may_have_been_running() -> None:
    h = Harness("a")
    for _ in range(3):
        h.submit(retries=1)
    assert [label for label, _ in h.sent] == ["a", "a", "a"]
    h.routes.add(_endpoint("b"))
    h.dispatcher.endpoint_lost({"n/a"}, "process n/a died")
    # The oldest was perhaps running: it uses its retry. The two behind it most
    # likely never started there: they move to b and keep theirs.
    assert h.done == []
    assert [label for label, _ in h.sent[3:]] == ["b", "b", "b"]
    assert sorted(rec.retries for rec in h.dispatcher.in_flight.values()) == [0, 1, 1]


async def test_calls_with_no_retries_never_move_off_a_dead_process() -> None:
    h = Harness("a")
    for _ in range(3):
        h.submit(retries=0)  # at most once: any of them may have run already
    h.routes.add(_endpoint("b"))
    h.dispatcher.endpoint_lost({"n/a"}, "process n/a died")
    assert [e.kind for _, e, _ in h.done if e is not None] == ["actor-died"] * 3
    assert len(h.sent) == 3


async def test_a_call_that_keeps_losing_its_process_is_charged_in_the_end() -> None:
    h = Harness("a")
    h.submit(retries=1)
    h.submit(retries=1)
    younger = max(h.dispatcher.in_flight.values(), key=lambda rec: rec.started)
    younger.moves = MAX_FREE_MOVES  # it already moved off as many dead processes
    h.routes.add(_endpoint("b"))
    h.dispatcher.endpoint_lost({"n/a"}, "process n/a died")
    # Both are charged now: no endless moving.
    assert sorted(rec.retries for rec in h.dispatcher.in_flight.values()) == [0, 0]


async def test_a_call_whose_values_together_exceed_a_frame_is_refused_before_it_is_sent() -> None:
    h = Harness("a")
    half = Blob([mmap.mmap(-1, 300 << 20)])  # untouched pages: no memory is used
    h.dispatcher.submit(
        fun="f",
        datasets=frozenset({"d"}),
        args=ARGS,
        deps=((1, half), (2, half)),  # each fits a frame, together they do not
        command="c",
        retries=3,
        on_done=lambda r, e, w: h.done.append((r, e, w)),
    )
    assert h.sent == []
    ((_, error, _),) = h.done
    assert error is not None and error.kind == "serialization"
    assert "more than a frame holds" in error.message


async def test_a_call_on_a_held_value_goes_to_the_replica_on_its_holders_node() -> None:
    """Two idle replicas on nodes A and B: the call whose big argument B holds goes to B,
    and its held dependency travels with it as a Held (fetched where it runs)."""
    routes = RoutingTable()
    for node in ("A", "B"):
        routes.add(Endpoint(f"{node}/1", node, "worker", frozenset({"f"}), frozenset(), node))
    sent: list[tuple[str, Call]] = []

    def send(endpoint: Endpoint, call: Call, hold: bool = False) -> bool:
        sent.append((endpoint.node_id, call))
        return True

    dispatcher = CallDispatcher(routes, send)
    held = Held("B", 7, 2_000_000)
    for _ in range(20):
        dispatcher.submit(
            fun="f",
            datasets=frozenset(),
            args=ARGS,
            deps=((1, held),),
            command="c",
            retries=3,
            on_done=lambda r, e, w: None,
        )
        dispatcher.complete(sent[-1][1].call_id, ARGS, None)
    assert {node for node, _ in sent} == {"B"}
    assert sent[0][1].held == ((1, held),) and sent[0][1].deps == ()
