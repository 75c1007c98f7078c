"""A peer link may have only so many calls running on this node; past that they are refused."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from mpreg.node.forwarding import Forwarding
from mpreg.node.links import LinkTable
from mpreg.protocol.codec import Blob
from mpreg.protocol.messages import Call, ForwardCall, ForwardDone
from mpreg.transport.connection import Connection, ConnState


class _Link:
    state = ConnState.OPEN

    def __init__(self) -> None:
        self.sent: list[Any] = []

    def send(self, message: object) -> None:
        self.sent.append(message)


class _Handle:
    done = False

    def cancel(self) -> None:
        pass


class _Calls:
    """Records each started call's completion callback; finishes them on demand."""

    def __init__(self) -> None:
        self.on_done: list[Callable[..., None]] = []

    def submit(self, *, on_done: Callable[..., None], **_: object) -> _Handle:
        self.on_done.append(on_done)
        return _Handle()


def _forward(forwarding: Forwarding, link: _Link, call_id: int) -> None:
    call = Call(call_id, "f", cast(Blob, b""), command=f"c{call_id}")
    forwarding.on_forward(cast(Connection, link), ForwardCall(call_id, "b/1", call))


def test_calls_past_the_links_cap_are_refused_and_room_frees_as_calls_finish() -> None:
    calls = _Calls()
    forwarding = Forwarding(
        cast(LinkTable[Connection], LinkTable("b")),
        cast(Any, calls),
        values=cast(Any, None),
        max_per_link=2,
    )
    greedy, other = _Link(), _Link()
    for call_id in (1, 2, 3):
        _forward(forwarding, greedy, call_id)
    assert len(calls.on_done) == 2  # the third never started
    (refused,) = greedy.sent
    assert isinstance(refused, ForwardDone) and refused.call_id == 3
    assert refused.error is not None and "max_forwarded_per_link" in refused.error.message
    _forward(forwarding, other, 10)  # the cap is per link: another peer is served
    assert len(calls.on_done) == 3
    calls.on_done[0](cast(Blob, b"ok"), None, "b/1")  # one of the greedy link's calls finished
    _forward(forwarding, greedy, 4)
    assert len(calls.on_done) == 4
    forwarding.link_closed(cast(Connection, greedy))  # its count goes with the link
    _forward(forwarding, greedy, 5)
    assert len(calls.on_done) == 5
