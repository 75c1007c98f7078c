"""Which forwarded calls a closed link takes with it: those sent over it and not yet answered."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from mpreg.node.forwarding import Forwarding
from mpreg.node.links import LinkTable
from mpreg.protocol.codec import Blob
from mpreg.protocol.messages import Call, Endpoint, ForwardCall, Held
from mpreg.transport.connection import Connection, ConnState

EP = Endpoint("b/1", "b", "worker", frozenset({"f"}), frozenset(), "f")


class _Link:
    state = ConnState.OPEN

    def __init__(self) -> None:
        self.sent: list[object] = []

    def send(self, message: object) -> None:
        self.sent.append(message)


def _call(call_id: int) -> Call:
    return Call(call_id, "f", cast(Blob, b""))


def test_a_closed_link_loses_only_the_unanswered_calls_it_carried() -> None:
    links: LinkTable[Any] = LinkTable("a")
    old, new = _Link(), _Link()
    forwarding = Forwarding(
        cast(LinkTable[Connection], links), calls=cast(Any, None), values=cast(Any, None)
    )
    links.opened("b", old)
    assert forwarding.send_call(EP, _call(1), False) and forwarding.send_call(EP, _call(2), False)
    links.opened("b", new)  # a second link to b: the newest carries what follows
    assert forwarding.send_call(EP, _call(3), False)
    assert [m.call_id for m in old.sent if isinstance(m, ForwardCall)] == [1, 2]
    forwarding.answered(cast(Connection, old), 1)
    assert forwarding.link_closed(cast(Connection, old)) == {2}
    assert forwarding.link_closed(cast(Connection, new)) == {3}
    assert forwarding.link_closed(cast(Connection, new)) == set()


def test_no_open_link_means_the_call_is_not_sent() -> None:
    links: LinkTable[Any] = LinkTable("a")
    forwarding = Forwarding(
        cast(LinkTable[Connection], links), calls=cast(Any, None), values=cast(Any, None)
    )
    assert not forwarding.send_call(EP, _call(1), False)
    closed = _Link()
    closed.state = ConnState.CLOSED
    links.opened("b", closed)
    assert not forwarding.send_call(EP, _call(2), False)


class _Values:
    def __init__(self) -> None:
        self.released: list[Held] = []

    def release(self, held: Held) -> None:
        self.released.append(held)


def test_a_held_result_nobody_waits_for_any_more_is_released_at_once() -> None:
    """A call cancelled (or moved) after its member kept the result: that member frees it."""
    links: LinkTable[Any] = LinkTable("a")
    links.opened("b", _Link())
    waited, gave_up = SimpleNamespace(answered=False), SimpleNamespace(answered=True)
    calls = SimpleNamespace(in_flight={1: waited, 2: gave_up})
    values = _Values()
    forwarding = Forwarding(
        cast(LinkTable[Connection], links), calls=cast(Any, calls), values=cast(Any, values)
    )
    kept, dropped, moved = Held("b", 1, 5), Held("b", 2, 5), Held("b", 3, 5)
    forwarding.answered(cast(Connection, _Link()), 1, kept)  # still waited for: kept
    forwarding.answered(cast(Connection, _Link()), 2, dropped)  # cancelled meanwhile
    forwarding.answered(cast(Connection, _Link()), 3, moved)  # no longer in flight here
    assert values.released == [dropped, moved]
