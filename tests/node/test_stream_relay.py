"""A node's stream relays over a real dispatcher and fake links (no sockets, no processes)."""

from __future__ import annotations

from typing import Any, cast

from mpreg.node.dispatch import CallDispatcher
from mpreg.node.links import LinkTable
from mpreg.node.routing import RoutingTable
from mpreg.node.streams import NodeStreams
from mpreg.protocol.codec import dumps_value
from mpreg.protocol.messages import Call, Endpoint, ErrorInfo, ForwardCall, TaskSpec
from mpreg.protocol.streams import StreamCredit, StreamEnd, StreamItem, StreamStart
from mpreg.transport.connection import Connection, ConnState

ARGS = dumps_value(((), {}))
DIED = ErrorInfo(kind="actor-died", message="gone")


class _Link:
    """A connection's send side: what was sent, in order."""

    state = ConnState.OPEN

    def __init__(self) -> None:
        self.sent: list[object] = []

    def send(self, message: object) -> None:
        self.sent.append(message)


class Node:
    """One node's dispatcher and stream relays; its workers' links are one list of sends."""

    def __init__(self, *labels: str) -> None:
        self.routes = RoutingTable()
        for label in labels:
            self.routes.add(
                Endpoint(f"n/{label}", "n", "actor", frozenset({"f"}), frozenset(), label)
            )
        self.to_workers: list[tuple[str, object]] = []  # (endpoint id, message), in order
        self.calls = CallDispatcher(self.routes, self._send_call, self._send_cancel)
        links: LinkTable[Any] = LinkTable("n")
        self.streams = NodeStreams(
            "n", self.calls, self._to_worker, cast(LinkTable[Connection], links), self.routes.check
        )

    def _to_worker(self, endpoint_id: str, message: object) -> bool:
        self.to_workers.append((endpoint_id, message))
        return True

    def _send_call(self, endpoint: Endpoint, call: Call, hold: bool = False) -> bool:
        self.streams.before_send(endpoint, call.call_id)
        return self._to_worker(endpoint.endpoint_id, call)

    def _send_cancel(self, endpoint: Endpoint, call_id: int) -> None:
        self._to_worker(endpoint.endpoint_id, ("cancel", call_id))

    def last_call(self) -> Call:
        return next(m for _, m in reversed(self.to_workers) if isinstance(m, Call))


def _start(node: Node, client: _Link, stream_id: int = 7, window: int = 1) -> None:
    task = TaskSpec(stream_id, "s", "f", frozenset(), ARGS, (), want_result=False)
    node.streams.start(cast(Connection, client), StreamStart(stream_id, task, window))


async def test_a_streams_call_is_opened_on_its_link_just_before_it_with_the_credit_given() -> None:
    node, client = Node("a"), _Link()
    _start(node, client, window=3)
    (eid1, opening), (eid2, call) = node.to_workers
    assert eid1 == eid2 == "n/a"
    assert isinstance(call, Call)
    assert opening == StreamCredit(call.call_id, 3, opens=True)


async def test_items_go_to_the_client_in_order_and_credit_goes_to_the_worker() -> None:
    node, client = Node("a"), _Link()
    _start(node, client)
    call = node.last_call()
    node.streams.on_item(StreamItem(call.call_id, dumps_value(0)))
    node.streams.on_credit(cast(Connection, client), StreamCredit(7, 4))
    assert node.to_workers[-1] == ("n/a", StreamCredit(call.call_id, 4))
    for i in (1, 2, 3, 4):
        node.streams.on_item(StreamItem(call.call_id, dumps_value(i)))
    node.calls.complete(call.call_id, None, None)
    assert [type(m).__name__ for m in client.sent] == ["StreamItem"] * 5 + ["StreamEnd"]
    assert client.sent[-1] == StreamEnd(7, None, "n/a")
    assert len(node.streams) == 0


async def test_before_its_first_item_a_stream_is_retried_and_reopened_after_it_never() -> None:
    node, client = Node("a", "b"), _Link()
    _start(node, client)
    first = node.last_call()
    node.calls.complete(first.call_id, None, DIED)  # died before any item: tried elsewhere
    second = node.last_call()
    assert second.call_id != first.call_id
    assert node.to_workers[-2][1] == StreamCredit(second.call_id, 1, opens=True)
    node.streams.on_item(StreamItem(second.call_id, dumps_value(0)))
    node.calls.complete(second.call_id, None, DIED)  # after an item: the stream ends
    end = client.sent[-1]
    assert isinstance(end, StreamEnd) and end.error is not None
    assert end.error.kind == "actor-died"
    assert node.last_call() is second


async def test_an_item_beyond_the_credit_ends_the_stream_with_a_protocol_error() -> None:
    node, client = Node("a"), _Link()
    _start(node, client)
    call = node.last_call()
    node.streams.on_item(StreamItem(call.call_id, dumps_value(0)))
    node.streams.on_item(StreamItem(call.call_id, dumps_value(1)))  # only 1 was granted
    end = client.sent[-1]
    assert isinstance(end, StreamEnd) and end.error is not None
    assert end.error.kind == "protocol"
    assert ("n/a", ("cancel", call.call_id)) in node.to_workers
    assert len(client.sent) == 2  # the item within the credit, then the end


async def test_a_client_that_cancels_or_goes_away_stops_its_stream_where_it_runs() -> None:
    node, client = Node("a"), _Link()
    _start(node, client, stream_id=1)
    _start(node, client, stream_id=2)
    first, second = [m for _, m in node.to_workers if isinstance(m, Call)]
    node.streams.cancel(cast(Connection, client), (1, 99))
    assert ("n/a", ("cancel", first.call_id)) in node.to_workers
    node.streams.link_closed(cast(Connection, client))
    assert ("n/a", ("cancel", second.call_id)) in node.to_workers
    assert client.sent == []  # it asked, or it is gone: no StreamEnd
    node.streams.on_item(StreamItem(first.call_id, dumps_value(0)))  # late: dropped
    assert client.sent == [] and len(node.streams) == 0


async def test_a_call_a_peer_opened_as_a_stream_relays_its_items_back_to_that_peer() -> None:
    node, peer = Node("a"), _Link()
    conn = cast(Connection, peer)
    forwarded: list[Any] = []

    def forward(link: Connection, message: ForwardCall) -> Any:
        def done(result: Any, error: ErrorInfo | None, where: str) -> None:
            node.streams.forward_done(link, message.call_id)

        handle = node.calls.submit(
            fun="f",
            datasets=frozenset(),
            args=message.call.args,
            deps=(),
            command="",
            retries=0,
            endpoint_id=message.endpoint_id,
            on_done=done,
        )
        forwarded.append(handle)
        return handle

    node.streams.on_credit(conn, StreamCredit(41, 2, opens=True))
    node.streams.forwarded(conn, ForwardCall(41, "n/a", Call(41, "f", ARGS)), forward)
    here = node.last_call()
    assert node.to_workers[-2][1] == StreamCredit(here.call_id, 2, opens=True)
    node.streams.on_item(StreamItem(here.call_id, dumps_value("x")))
    assert peer.sent == [StreamItem(41, cast(Any, peer.sent[0]).value)]
    node.streams.on_credit(conn, StreamCredit(41, 5))
    assert node.to_workers[-1] == ("n/a", StreamCredit(here.call_id, 5))
    node.calls.complete(here.call_id, None, None)
    assert len(node.streams) == 0
    # An ordinary forwarded call is not a stream: nothing opens it.
    opened = [m for _, m in node.to_workers if isinstance(m, StreamCredit) and m.opens]
    node.streams.forwarded(conn, ForwardCall(42, "n/a", Call(42, "f", ARGS)), forward)
    assert isinstance(node.to_workers[-1][1], Call)
    assert [m for _, m in node.to_workers if isinstance(m, StreamCredit) and m.opens] == opened
