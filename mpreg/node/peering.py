"""Talking to the other nodes: join, hello, endpoint news, forwarded calls, link loss.

Who the peers are is kept in one :class:`~mpreg.node.peers.PeerTable`; this is
its asyncio side. Two nodes join by exchanging a :class:`PeerHello` (who I am,
the endpoints I serve, the nodes I know): the dialler sends first, the other
answers after registering it, so once ``join`` returns both route to each
other. Every node a hello names is joined too, which makes the cluster a full
mesh. A link that closes takes its node's endpoints out of the routing table.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Literal

from mpreg.errors import ClusterUnavailable
from mpreg.node.calls import InFlight
from mpreg.node.dispatch import CallDispatcher
from mpreg.node.peers import Peer, PeerTable
from mpreg.node.routing import RoutingTable
from mpreg.protocol.codec import Blob
from mpreg.protocol.handshake import Handshake
from mpreg.protocol.messages import (
    Call,
    Endpoint,
    EndpointsChanged,
    ErrorInfo,
    ForwardCall,
    ForwardCancel,
    ForwardDone,
    NodeInfo,
    PeerHello,
)
from mpreg.tasks import TaskSet
from mpreg.transport.connection import Connection, ConnState, connect, parse_address

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 10.0

MessageHandler = Callable[[Connection, object], None]
CloseHandler = Callable[[Connection, BaseException | None], None]


class Peering:
    """The links of one node to its peers. ``on_message``/``on_close`` serve dialled links."""

    def __init__(
        self,
        *,
        me: Callable[[], NodeInfo],
        handshake: Callable[[Literal["connector", "acceptor"]], Handshake],
        routes: RoutingTable,
        calls: CallDispatcher,
        tasks: TaskSet,
        on_message: MessageHandler,
        on_close: CloseHandler,
    ) -> None:
        self._me = me
        self._handshake = handshake
        self.routes = routes
        self.calls = calls
        self._tasks = tasks
        self._on_message = on_message
        self._on_close = on_close
        self.table: PeerTable[Connection] = PeerTable(me().node_id)
        # Calls peers forwarded to us, by (their link, their call id): to cancel them.
        self._forwarded: dict[tuple[Connection, int], InFlight] = {}

    def __repr__(self) -> str:
        return f"<Peering {self.table!r}>"

    # --- joining ----------------------------------------------------------------------

    async def join(self, address: str) -> None:
        """Connect to a peer node and exchange endpoints; raises ClusterUnavailable."""
        await self._dial(self.table.dialling(address))

    async def _dial(self, peer: Peer[Connection]) -> None:
        address = peer.address
        try:
            host, port = parse_address(address)
            conn = await connect(
                host,
                port,
                self._handshake("connector"),
                on_message=self._on_message,
                on_close=self._on_close,
            )
        except BaseException:
            self.table.forget(peer)
            raise
        joined: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.table.connected(peer, conn, joined)
        conn.send(self.hello())
        self._send_suspended(conn)
        try:
            # The peer answers our hello with its own after registering us:
            # once this returns, both sides route to each other.
            async with asyncio.timeout(JOIN_TIMEOUT):
                await asyncio.wait([joined, conn.closed], return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            conn.close()
            raise ClusterUnavailable(f"node {address} did not answer the join") from None
        finally:
            peer.joined = None
        if not joined.done():
            raise ClusterUnavailable(f"node {address} closed the connection during the join")

    async def _join_quietly(self, peer: Peer[Connection]) -> None:
        try:
            await self._dial(peer)
        except Exception as exc:  # ClusterUnavailable, AuthenticationError, ...
            log.warning("could not reach peer %s: %s", peer.address, exc)
            self.table.forget(peer)

    def accepted(self, conn: Connection) -> None:
        """A node dialled us; its hello follows."""
        self.table.accepted(conn)

    def hello(self) -> PeerHello:
        node_id = self.table.node_id
        local = tuple(ep for ep in self.routes.endpoints() if ep.node_id == node_id)
        return PeerHello(self._me(), local, self.table.alive_addresses())

    # --- messages -----------------------------------------------------------------------

    def on_hello(self, conn: Connection, message: PeerHello) -> None:
        info = message.node
        answer = self.hello()  # built before the joiner is registered: it does not hear of itself
        peer = self.table.hello(conn, info)
        if peer is None:  # we dialled ourselves under another address
            conn.close()
            return
        if not peer.dialled:
            conn.send(answer)  # we were dialled: answer the joiner
            self._send_suspended(conn)
        elif peer.joined is not None and not peer.joined.done():
            peer.joined.set_result(None)
        for endpoint in message.endpoints:
            if endpoint.node_id == info.node_id:
                self.routes.add(endpoint)
        self.calls.endpoints_added()
        log.info(
            "peer %s (%s) joined with %d endpoints",
            info.name,
            info.address,
            len(message.endpoints),
        )
        known = self.table.known_addresses()
        for address in message.peers:
            if address not in known:
                known.add(address)
                self._tasks.spawn(self._join_quietly(self.table.dialling(address)))

    def on_endpoints_changed(self, message: EndpointsChanged) -> None:
        """A peer's endpoints appeared, went for good, paused for a restart or serve again."""
        nid = message.node_id
        for endpoint in message.added:
            if endpoint.node_id == nid:
                self.routes.add(endpoint)
        for endpoint_id in message.removed:
            self.routes.remove(endpoint_id)
        for endpoint_id in message.suspended:
            if self._hosted_by(endpoint_id, nid):
                self.routes.suspend(endpoint_id)
        for endpoint_id, error in message.crashed:
            if self._hosted_by(endpoint_id, nid):
                self.routes.suspend(endpoint_id, error)
        for endpoint_id in message.resumed:
            if self._hosted_by(endpoint_id, nid):
                self.routes.resume(endpoint_id)
        gone = set(message.removed) | set(message.suspended)
        gone.update(endpoint_id for endpoint_id, _ in message.crashed)
        if gone:
            self.calls.endpoint_lost(gone, f"peer {nid} lost an endpoint")
        # Parked calls may now go to a resumed endpoint, or fail if nothing is left.
        self.calls.endpoints_added()

    def _hosted_by(self, endpoint_id: str, node_id: str) -> bool:
        known = self.routes.get(endpoint_id)
        return known is not None and known.node_id == node_id

    def _send_suspended(self, conn: Connection) -> None:
        """Right behind our hello: which of our endpoints are restarting (a hello cannot say)."""
        restarting: list[str] = []
        crashed: list[tuple[str, ErrorInfo]] = []
        for endpoint_id in self.routes.suspended(self.table.node_id):
            error = self.routes.suspension(endpoint_id)
            if error is None:
                restarting.append(endpoint_id)
            else:
                crashed.append((endpoint_id, error))
        if restarting or crashed:
            conn.send(
                EndpointsChanged(
                    self.table.node_id, suspended=tuple(restarting), crashed=tuple(crashed)
                )
            )

    def on_forward(self, conn: Connection, message: ForwardCall) -> None:
        """A peer routed a call to one of our endpoints: run it there, answer the peer."""
        origin_id, call = message.call_id, message.call
        key = (conn, origin_id)

        def done(result: Blob | None, error: ErrorInfo | None, where: str) -> None:
            self._forwarded.pop(key, None)
            _reply_forward(conn, origin_id, result, error)

        handle = self.calls.submit(
            fun=call.fun,
            datasets=frozenset(),
            args=call.args,
            deps=call.deps,
            command=call.command,
            retries=0,
            endpoint_id=message.endpoint_id,
            on_done=done,
            deadline=call.deadline,
        )
        if not handle.done:
            self._forwarded[key] = handle

    def on_forward_cancel(self, conn: Connection, origin_id: int) -> None:
        """The peer gave up on a call it forwarded to us (unknown or finished: ignored)."""
        handle = self._forwarded.pop((conn, origin_id), None)
        if handle is not None:
            handle.cancel()

    def on_close(self, conn: Connection) -> None:
        # The calls this peer forwarded are retried elsewhere by it: stop ours.
        for key in [key for key in self._forwarded if key[0] is conn]:
            self._forwarded.pop(key).cancel()
        peer = self.table.closed(conn)
        if peer is None or peer.info is None:
            return  # not the current link of a node we route to
        lost = set(self.routes.remove_node(peer.info.node_id))
        log.warning(
            "peer %s (%s) is gone; dropped %d endpoints",
            peer.info.name,
            peer.info.address,
            len(lost),
        )
        self.calls.endpoint_lost(lost, f"node {peer.info.name} went away")
        self.calls.endpoints_added()  # calls waiting for its endpoints fail now

    # --- sending ------------------------------------------------------------------------

    def broadcast(self, message: object) -> None:
        for peer in self.table.alive():
            if peer.link is not None and peer.link.state is ConnState.OPEN:
                peer.link.send(message)

    def send_call(self, endpoint: Endpoint, call: Call) -> bool:
        """Forward ``call`` to the node hosting ``endpoint``; False if unreachable now."""
        conn = self.table.link_for(endpoint.node_id)
        if conn is None or conn.state is not ConnState.OPEN:
            return False
        conn.send(ForwardCall(call.call_id, endpoint.endpoint_id, call))
        return True

    def send_cancel(self, endpoint: Endpoint, call_id: int) -> None:
        """Cancel a call forwarded to ``endpoint``'s node (``call_id``: our id of it)."""
        conn = self.table.link_for(endpoint.node_id)
        if conn is not None and conn.state is ConnState.OPEN:
            conn.send(ForwardCancel(call_id))

    def close_all(self) -> None:
        for conn in self.table.links():
            conn.close()


def _reply_forward(
    conn: Connection, call_id: int, result: Blob | None, error: ErrorInfo | None
) -> None:
    if conn.state is ConnState.OPEN:
        conn.send(ForwardDone(call_id, result, error))
