"""Calls that cross nodes: forwarded to the member hosting the endpoint, answered back.

The origin node picks an endpoint on another member and sends the call over
its link (``ForwardCall``); the member runs it on that very endpoint and
answers on the same link (``ForwardDone``). A ``ForwardCancel`` stops one. When
a link closes, the calls it brought are stopped here (their origin moves them
elsewhere) and the calls sent over it are moved by the membership side
(:mod:`mpreg.node.peering`).

A peer is bounded as a client is: its origin's dispatch window (128 calls and
8 MiB per endpoint) keeps a well-behaved one far below ``max_per_link`` calls
running here for it; past that, a call it forwards is refused with an error
rather than queued, so an authenticated but misbehaving peer cannot make this
node hold an unbounded number of calls (and their arguments).
"""

from __future__ import annotations

from collections.abc import Callable

from mpreg.config import DEFAULT_MAX_FORWARDED_PER_LINK
from mpreg.node.calls import InFlight
from mpreg.node.dispatch import CallDispatcher
from mpreg.node.links import LinkTable
from mpreg.node.values import PeerValues
from mpreg.protocol.codec import Blob
from mpreg.protocol.messages import (
    Call,
    Endpoint,
    ErrorInfo,
    ForwardCall,
    ForwardCancel,
    ForwardDone,
    Held,
)
from mpreg.transport.connection import Connection, ConnState


class Forwarding:
    """Calls this node forwards to other members, and calls they forwarded to it."""

    def __init__(
        self,
        links: LinkTable[Connection],
        calls: CallDispatcher,
        values: PeerValues,
        max_per_link: int = DEFAULT_MAX_FORWARDED_PER_LINK,
    ) -> None:
        self.links = links
        self.calls = calls
        self.values = values
        self.max_per_link = max_per_link
        self._running: dict[Connection, int] = {}  # calls each link brought, not answered yet
        # Calls peers forwarded to us, by (their link, their call id): to cancel them.
        self._forwarded: dict[tuple[Connection, int], InFlight] = {}
        # Calls we forwarded and await, by the link they went over: lost if it closes.
        self._sent: dict[Connection, set[int]] = {}
        # Told when a call a peer forwarded is answered (mpreg.node.streams ends its stream).
        self.on_answered: Callable[[Connection, int], None] = lambda conn, origin_id: None

    def __repr__(self) -> str:
        return f"<Forwarding running-for-peers={len(self._forwarded)}>"

    def on_forward(self, conn: Connection, message: ForwardCall) -> InFlight | None:
        """A peer routed a call to one of our endpoints: run it there, answer the peer.

        Returns the call's handle (perhaps already answered); None if it was refused.
        """
        origin_id, call = message.call_id, message.call
        key = (conn, origin_id)
        running = self._running.get(conn, 0)
        if running >= self.max_per_link:
            conn.send(ForwardDone(origin_id, None, _refused(running, call.command or call.fun)))
            self.on_answered(conn, origin_id)
            return None
        self._running[conn] = running + 1
        owner = self.links.node_of(conn) or "" if message.hold else ""

        def done(result: Blob | Held | None, error: ErrorInfo | None, where: str) -> None:
            self._forwarded.pop(key, None)
            self.on_answered(conn, origin_id)
            if conn in self._running:
                self._running[conn] -= 1
            if conn.state is not ConnState.OPEN:
                return
            held = self.values.hold(owner, result) if owner and type(result) is Blob else None
            if held is not None:  # a big result stays here until a call or its driver needs it
                conn.send(ForwardDone(origin_id, None, error, held))
            else:
                conn.send(ForwardDone(origin_id, result if type(result) is Blob else None, error))

        handle = self.calls.submit(
            fun=call.fun,
            datasets=frozenset(),
            args=call.args,
            deps=(*call.deps, *call.held) if call.held else call.deps,
            command=call.command,
            retries=0,
            endpoint_id=message.endpoint_id,
            on_done=done,
            deadline=call.deadline,
            chain=call.chain,
        )
        if not handle.done:
            self._forwarded[key] = handle
        return handle

    def on_forward_cancel(self, conn: Connection, origin_id: int) -> None:
        """The peer gave up on a call it forwarded to us (unknown or finished: ignored)."""
        handle = self._forwarded.pop((conn, origin_id), None)
        if handle is not None:
            handle.cancel()

    def send_call(self, endpoint: Endpoint, call: Call, hold: bool) -> bool:
        """Forward ``call`` to the node hosting ``endpoint``; False if unreachable now.

        ``hold``: a big result may stay there (answered as a Held).
        """
        conn = self.links.link_for(endpoint.node_id)
        if conn is None or conn.state is not ConnState.OPEN:
            return False
        conn.send(ForwardCall(call.call_id, endpoint.endpoint_id, call, hold))
        sent = self._sent.get(conn)
        if sent is None:
            sent = self._sent[conn] = set()
        sent.add(call.call_id)
        return True

    def answered(self, conn: Connection, call_id: int, held: Held | None = None) -> None:
        """The answer to a call we forwarded came back over ``conn``.

        ``held``: its result stayed on that member. If nobody waits for the
        answer any more (cancelled, expired, or moved elsewhere meanwhile), its
        holder may let it go at once.
        """
        sent = self._sent.get(conn)
        if sent is not None:
            sent.discard(call_id)
        if held is not None:
            record = self.calls.in_flight.get(call_id)
            if record is None or record.answered:
                self.values.release(held)

    def send_cancel(self, endpoint: Endpoint, call_id: int) -> None:
        """Cancel a call forwarded to ``endpoint``'s node (``call_id``: our id of it)."""
        conn = self.links.link_for(endpoint.node_id)
        if conn is not None and conn.state is ConnState.OPEN:
            conn.send(ForwardCancel(call_id))

    def link_closed(self, conn: Connection) -> set[int]:
        """``conn`` closed: stop what it brought us; return the ids of what we sent over it.

        The peer stops the calls we forwarded when it sees the close, so those
        are lost (the caller moves them); the calls it forwarded to us are
        retried elsewhere by it, so ours stop.
        """
        for key in [key for key in self._forwarded if key[0] is conn]:
            self._forwarded.pop(key).cancel()
        self._running.pop(conn, None)
        return self._sent.pop(conn, set())


def _refused(running: int, what: str) -> ErrorInfo:
    return ErrorInfo(
        kind="internal",
        message=f"refused: the forwarding node already has {running} calls running on this "
        "node (NodeConfig.max_forwarded_per_link)",
        command=what,
    )
