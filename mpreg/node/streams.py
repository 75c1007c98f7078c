"""Streams through a node: items relayed towards the consumer, credit towards the producer.

A stream is an ordinary call in the dispatcher (routed like one, counted in
its endpoint's window while open, retried, cancelled and expired like one)
whose items travel beside it. This node keeps, per stream, a :class:`Relay`:
who wants the items (the client's session, or the peer node that forwarded
the call here) and under what id, and the call's record. It holds no items:
each is passed on as it arrives, and the producer sends no more than the
consumer's credit, so at most a window of items is anywhere between them.

On every send of a stream's call (its first, or a retry with a fresh id)
a ``StreamCredit(opens=True)`` with the credit still unused goes first on the
same link, so the worker (or the next node) knows the call is a stream. Once
an item has been delivered the call is never retried: its items would repeat.
The end is the call's: the client hears :class:`StreamEnd`, a peer the
usual ``ForwardDone`` (:mod:`mpreg.node.forwarding`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from mpreg.errors import NoRouteError
from mpreg.node.calls import InFlight, Where
from mpreg.node.dispatch import CallDispatcher
from mpreg.node.links import LinkTable
from mpreg.protocol.codec import Blob
from mpreg.protocol.failures import ErrorInfo, to_info
from mpreg.protocol.messages import Endpoint, ForwardCall
from mpreg.protocol.streams import StreamCredit, StreamEnd, StreamItem, StreamStart
from mpreg.transport.connection import Connection, ConnState

log = logging.getLogger(__name__)

WorkerSender = Callable[[str, StreamCredit], bool]  # to a local endpoint's worker (Workers.send)
Forward = Callable[[Connection, ForwardCall], InFlight | None]  # Forwarding.on_forward


@dataclass(eq=False, slots=True)
class Relay:
    """One stream through this node: whom its items go to, and how much it may send."""

    upstream: Connection  # the client's connection, or the link of the peer that forwarded it
    upstream_id: int  # the stream's id there: the client's stream id, or the peer's call id
    command: str  # its name in errors
    to_client: bool
    granted: int  # credit the consumer gave so far
    record: InFlight | None = None
    items: int = 0  # relayed so far
    closed: bool = False  # ended, or given up by its consumer

    @property
    def unused(self) -> int:
        """Credit the producer has not used yet: what a (re)sent call is opened with."""
        return self.granted - self.items


class NodeStreams:
    """The streams passing through one node."""

    def __init__(
        self,
        node_id: str,
        calls: CallDispatcher,
        workers: WorkerSender,
        links: LinkTable[Connection],
        check: Callable[..., None],
    ) -> None:
        self.node_id = node_id
        self.calls = calls
        self._workers = workers
        self._links = links
        self._check = check  # RoutingTable.check
        self._by_record: dict[InFlight, Relay] = {}
        self._by_upstream: dict[tuple[Connection, int], Relay] = {}
        self._announced: dict[tuple[Connection, int], int] = {}  # peer's opens before its call
        # The stream whose call is being submitted now, and its arguments: the
        # dispatcher may send the call before submit returns its record, and that
        # first send must open it. Its Call carries that very Blob: how it is known.
        self._opening: Relay | None = None
        self._opening_args: Blob | None = None

    def __repr__(self) -> str:
        return f"<NodeStreams open={len(self._by_upstream)}>"

    def __len__(self) -> int:
        return len(self._by_upstream)

    # --- opening -------------------------------------------------------------------

    def start(self, conn: Connection, message: StreamStart) -> None:
        """A client opens a stream: run its task as a call whose items go back to it."""
        task = message.task
        relay = Relay(conn, message.stream_id, task.name, to_client=True, granted=message.window)
        try:
            self._check((task,))
        except NoRouteError as exc:
            self._end(relay, to_info(exc), "")
            return
        self._by_upstream[(conn, message.stream_id)] = relay
        self._opening, self._opening_args = relay, task.args
        try:
            record = self.calls.submit(
                fun=task.fun,
                datasets=task.datasets,
                args=task.args,
                deps=(),
                command=task.name,
                retries=task.retries,
                on_done=lambda result, error, where: self._end(relay, error, where),
                deadline=task.deadline,
            )
        finally:
            self._opening = self._opening_args = None
        self._bind(relay, record)

    def forwarded(self, conn: Connection, message: ForwardCall, forward: Forward) -> None:
        """A peer forwarded a call here (``forward`` runs it); a stream if the peer opened it."""
        key = (conn, message.call_id)
        credit = self._announced.pop(key, None) if self._announced else None
        if credit is None:
            forward(conn, message)
            return
        relay = Relay(conn, message.call_id, "", to_client=False, granted=credit)
        self._by_upstream[key] = relay
        self._opening, self._opening_args = relay, message.call.args
        try:
            record = forward(conn, message)
        finally:
            self._opening = self._opening_args = None
        if record is not None:
            self._bind(relay, record)

    def forward_done(self, conn: Connection, origin_id: int) -> None:
        """A call a peer forwarded here was answered: if it was a stream, it ended."""
        relay = self._by_upstream.pop((conn, origin_id), None) if self._by_upstream else None
        if relay is not None:
            relay.closed = True
            if relay.record is not None:
                self._by_record.pop(relay.record, None)

    def _bind(self, relay: Relay, record: InFlight) -> None:
        if relay.closed or record.done:
            self._forget(relay)
            return
        relay.record = record
        self._by_record[record] = relay

    def before_send(self, endpoint: Endpoint, call_id: int) -> None:
        """The dispatcher is about to send call ``call_id``: a stream's is opened first."""
        if not self._by_record and self._opening is None:
            return  # no stream here: the ordinary call's hot path
        record = self.calls.in_flight.get(call_id)
        if record is None:
            return
        relay = self._by_record.get(record)
        opening = self._opening
        if relay is None and opening is not None and record.call.args is self._opening_args:
            relay = opening
            relay.record = record
            self._by_record[record] = relay
        if relay is not None:
            self._send(endpoint, StreamCredit(call_id, relay.unused, opens=True))

    # --- items and credit ------------------------------------------------------------

    def on_item(self, message: StreamItem) -> None:
        """An item came from the producer side (a worker, or the node we forwarded to)."""
        record = self.calls.in_flight.get(message.call_id)
        relay = self._by_record.get(record) if record is not None else None
        if relay is None or relay.closed or record is None or record.answered:
            return  # cancelled or ended meanwhile: nobody wants it
        if relay.items >= relay.granted:
            log.warning("stream call=%s sent beyond its credit; cancelled", message.call_id)
            relay.closed = True
            record.cancel()
            error = ErrorInfo(kind="protocol", message="the producer sent beyond its credit")
            self._end(relay, error, record.endpoint_id, closed=True)
            return
        relay.items += 1
        record.retries = 0  # items were delivered: a retry would repeat them
        upstream = relay.upstream
        if upstream.state is ConnState.OPEN:
            upstream.send(StreamItem(relay.upstream_id, message.value))

    def on_credit(self, conn: Connection, message: StreamCredit) -> None:
        """Credit from the consumer side: passed on to where the call runs."""
        key = (conn, message.call_id)
        if message.opens:  # a peer is about to forward a stream's call
            self._announced[key] = message.items
            return
        relay = self._by_upstream.get(key)
        if relay is None or relay.closed or message.items <= 0:
            return
        relay.granted += message.items
        record = relay.record
        if record is None or record.where is not Where.SENT:
            return  # not sent yet: its opening credit will carry it
        endpoint = self.calls.routes.get(record.endpoint_id)
        if endpoint is not None:
            self._send(endpoint, StreamCredit(record.call.call_id, message.items))

    def _send(self, endpoint: Endpoint, message: StreamCredit) -> None:
        """To the worker of ``endpoint``, or to the node hosting it (the link its call took)."""
        if endpoint.node_id == self.node_id:
            self._workers(endpoint.endpoint_id, message)
            return
        link = self._links.link_for(endpoint.node_id)
        if link is not None and link.state is ConnState.OPEN:
            link.send(message)

    # --- ending --------------------------------------------------------------------

    def cancel(self, conn: Connection, stream_ids: tuple[int, ...]) -> None:
        """The client gave up on these streams (ids of other tasks are ignored)."""
        if not self._by_upstream:
            return
        for stream_id in stream_ids:
            relay = self._by_upstream.get((conn, stream_id))
            if relay is not None:
                relay.closed = True  # it asked: no StreamEnd for it
                if relay.record is not None:
                    relay.record.cancel()  # stopped where it runs; _end forgets it
                self._forget(relay)

    def link_closed(self, conn: Connection) -> None:
        """A client or peer link closed: its streams stop (their calls are cancelled elsewhere)."""
        for key in [key for key in self._by_upstream if key[0] is conn]:
            relay = self._by_upstream[key]
            relay.closed = True
            if relay.record is not None and relay.to_client:
                relay.record.cancel()
            self._forget(relay)
        for key in [key for key in self._announced if key[0] is conn]:
            del self._announced[key]

    def _end(self, relay: Relay, error: ErrorInfo | None, where: str, closed: bool = False) -> None:
        """The stream's call was answered: tell the client (a peer hears ForwardDone)."""
        was_closed = relay.closed and not closed
        relay.closed = True
        self._forget(relay)
        if was_closed or not relay.to_client:
            return
        if error is not None and not error.command:
            error = replace(error, command=relay.command)
        if relay.upstream.state is ConnState.OPEN:
            relay.upstream.send(StreamEnd(relay.upstream_id, error, where))

    def _forget(self, relay: Relay) -> None:
        if self._by_upstream.get((relay.upstream, relay.upstream_id)) is relay:
            del self._by_upstream[(relay.upstream, relay.upstream_id)]
        if relay.record is not None and self._by_record.get(relay.record) is relay:
            del self._by_record[relay.record]
