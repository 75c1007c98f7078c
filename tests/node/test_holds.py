"""Held endpoints and the byte window in the dispatcher alone (a fake send, no sockets).

An endpoint whose link lags is held: it is sent nothing new, its calls go to a
replica that is not held or wait (and still expire, or are cancelled, while they
wait), and once let go it takes them in order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from mpreg.node.calls import InFlight
from mpreg.node.dispatch import CallDispatcher
from mpreg.node.routing import RoutingTable
from mpreg.protocol.codec import Blob
from mpreg.protocol.messages import Call, Endpoint, ErrorInfo


def _endpoint(name: str, node: str = "n1") -> Endpoint:
    return Endpoint(f"{node}/{name}", node, "actor", frozenset({"f"}), frozenset({"d"}), name)


def _args(nbytes: int = 16) -> Blob:
    return Blob([b"x" * nbytes])


class Harness:
    """A dispatcher over a fake send that records which endpoint got which call."""

    def __init__(self, *endpoints: Endpoint, window: int = 4, window_bytes: int = 1 << 20) -> None:
        self.routes = RoutingTable()
        for endpoint in endpoints:
            self.routes.add(endpoint)
        self.sent: list[tuple[str, Call]] = []
        self.done: dict[str, ErrorInfo | None] = {}  # command -> its error (None: a result)
        self.on_send: Callable[[Endpoint], None] = lambda endpoint: None
        self.dispatcher = CallDispatcher(
            self.routes, self._send, window=window, window_bytes=window_bytes
        )

    def _send(self, endpoint: Endpoint, call: Call, hold: bool = False) -> bool:
        self.sent.append((endpoint.label, call))
        self.on_send(endpoint)
        return True

    def submit(
        self, command: str, *, nbytes: int = 16, deadline: float = 0.0, endpoint_id: str = ""
    ) -> InFlight:
        def done(result: Blob | None, error: ErrorInfo | None, where: str) -> None:
            self.done[command] = error

        return self.dispatcher.submit(
            fun="f",
            datasets=frozenset({"d"}) if not endpoint_id else frozenset(),
            args=_args(nbytes),
            deps=(),
            command=command,
            retries=0 if endpoint_id else 3,
            on_done=done,
            endpoint_id=endpoint_id,
            deadline=deadline,
        )

    def sent_to(self, label: str) -> list[str]:
        return [call.command for to, call in self.sent if to == label]

    def answer(self, command: str) -> None:
        call = next(call for _, call in self.sent if call.command == command)
        self.dispatcher.complete(call.call_id, _args(), None)


async def test_a_held_endpoint_gets_nothing_new_while_another_replica_takes_the_calls() -> None:
    h = Harness(_endpoint("a"), _endpoint("b"))
    h.dispatcher.hold(("endpoint", "n1/a"), True)
    for i in range(6):
        h.submit(f"c{i}")
    assert h.sent_to("a") == [] and len(h.sent_to("b")) == 4  # b's window; the rest wait
    assert h.dispatcher.queued == 2
    h.dispatcher.hold(("endpoint", "n1/a"), False)
    assert h.sent_to("a") == ["c4", "c5"] and h.dispatcher.queued == 0


async def test_calls_for_a_held_endpoint_wait_and_go_in_order_once_it_drains() -> None:
    h = Harness(_endpoint("a"), window=2)
    h.submit("c0")
    h.dispatcher.hold(("endpoint", "n1/a"), True)
    for i in range(1, 5):
        h.submit(f"c{i}")
    h.answer("c0")  # a freed slot on a held endpoint stays empty
    assert h.sent_to("a") == ["c0"] and h.dispatcher.queued == 4
    h.dispatcher.hold(("endpoint", "n1/a"), False)
    assert h.sent_to("a") == ["c0", "c1", "c2"]  # up to its window, oldest first
    h.answer("c1")
    assert h.sent_to("a") == ["c0", "c1", "c2", "c3"]


async def test_a_held_node_holds_all_its_endpoints_even_those_it_adds_later() -> None:
    h = Harness(_endpoint("a", "n2"), _endpoint("local", "n1"))
    h.dispatcher.hold(("node", "n2"), True)
    h.routes.add(_endpoint("b", "n2"))
    h.dispatcher.endpoints_added()
    for i in range(3):
        h.submit(f"c{i}")
    assert h.sent_to("a") == [] and h.sent_to("b") == [] and len(h.sent_to("local")) == 3


async def test_a_call_waiting_for_a_held_endpoint_still_expires_and_can_be_cancelled() -> None:
    h = Harness(_endpoint("a"))
    h.dispatcher.hold(("endpoint", "n1/a"), True)
    h.submit("late", deadline=time.time() + 0.05)
    dropped = h.submit("dropped")
    h.submit("kept")
    dropped.cancel()
    assert h.done == {"dropped": h.done["dropped"]}
    await asyncio.sleep(0.1)  # ok-sleep: the waiting call's deadline passes
    errors = {command: error.kind if error else None for command, error in h.done.items()}
    assert errors == {"late": "deadline", "dropped": "cancelled"}
    h.dispatcher.hold(("endpoint", "n1/a"), False)
    assert h.sent_to("a") == ["kept"]  # the others were never sent


async def test_a_call_a_peer_pinned_to_a_held_endpoint_waits_for_that_endpoint_alone() -> None:
    h = Harness(_endpoint("a"), _endpoint("b"))
    h.dispatcher.hold(("endpoint", "n1/a"), True)
    h.submit("pinned", endpoint_id="n1/a")
    h.submit("free")
    assert h.sent_to("b") == ["free"]
    h.answer("free")  # b's freed slot must not take the pinned call
    assert h.sent_to("b") == ["free"] and h.sent_to("a") == []
    h.dispatcher.hold(("endpoint", "n1/a"), False)
    assert h.sent_to("a") == ["pinned"]


async def test_a_pinned_call_waiting_for_an_endpoint_that_is_lost_fails() -> None:
    h = Harness(_endpoint("a"), _endpoint("b"))
    h.dispatcher.hold(("endpoint", "n1/a"), True)
    h.submit("pinned", endpoint_id="n1/a")
    h.routes.remove("n1/a")
    h.dispatcher.endpoint_lost({"n1/a"}, "process n1/a died")
    error = h.done["pinned"]
    assert error is not None and error.kind == "actor-died" and h.dispatcher.queued == 0


async def test_a_call_pinned_to_a_held_endpoint_that_restarts_does_not_wait_for_it() -> None:
    h = Harness(_endpoint("a"))
    h.dispatcher.hold(("endpoint", "n1/a"), True)
    h.routes.suspend("n1/a")  # its process died: the call goes the way it would unheld
    h.submit("pinned", endpoint_id="n1/a")
    assert h.dispatcher.queued == 0 and h.sent_to("a") == ["pinned"]


async def test_an_endpoint_held_while_being_sent_to_gets_nothing_more() -> None:
    h = Harness(_endpoint("a"), window=8)
    h.submit("c0")
    h.dispatcher.hold(("endpoint", "n1/a"), True)
    for i in range(1, 6):
        h.submit(f"c{i}")

    def lag_at_the_second(endpoint: Endpoint) -> None:
        if len(h.sent) == 3:  # the link passes its high-water mark on this send
            h.dispatcher.hold(("endpoint", endpoint.endpoint_id), True)

    h.on_send = lag_at_the_second
    h.dispatcher.hold(("endpoint", "n1/a"), False)
    assert h.sent_to("a") == ["c0", "c1", "c2"] and h.dispatcher.queued == 3


async def test_bytes_outstanding_per_endpoint_stay_within_one_call_of_the_byte_window() -> None:
    h = Harness(_endpoint("a"), window=128, window_bytes=1000)
    for i in range(10):
        h.submit(f"c{i}", nbytes=300)
    assert h.sent_to("a") == ["c0", "c1", "c2", "c3"]  # 900 < 1000: the fourth still goes
    answered = 0
    while answered < 10:
        outstanding = len(h.sent) - answered
        assert 300 * (outstanding - 1) < 1000  # below the window until its last call
        h.answer(f"c{answered}")
        answered += 1
    assert h.sent_to("a") == [f"c{i}" for i in range(10)]


async def test_a_call_larger_than_the_byte_window_still_goes_alone() -> None:
    h = Harness(_endpoint("a"), window=128, window_bytes=1000)
    h.submit("huge", nbytes=5000)
    h.submit("next")
    assert h.sent_to("a") == ["huge"]
    h.answer("huge")
    assert h.sent_to("a") == ["huge", "next"]
