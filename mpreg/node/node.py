"""The per-host node: listens, authenticates, routes calls, supervises workers.

Every node is a peer. It accepts three kinds of authenticated connections:
clients (each gets a :class:`~mpreg.node.session.Session`), its own worker
processes (actor replicas and plain-function workers, which it spawns), and
other members (which gossip their membership and endpoints, and forward calls
to each other). Payloads are forwarded as opaque Blobs; the node never
unpickles a user value.

This module composes the parts and routes each message to the one that
handles it; each part is its own module:

- :mod:`~mpreg.node.workers` the worker processes and their endpoints,
  :mod:`~mpreg.node.deployments` the deploys this node coordinates,
- :mod:`~mpreg.node.peering` the links to other members and the SWIM core
  (:mod:`mpreg.membership`) it drives, :mod:`~mpreg.node.forwarding` the calls
  that cross them,
- :mod:`~mpreg.node.pressure` when to stop reading from a client, or sending to an endpoint,
- :mod:`~mpreg.node.stats` status answers,
- :mod:`~mpreg.node.dispatch` and :mod:`~mpreg.node.routing` where each call goes.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Literal

from mpreg.actors.loader import actor_spec, functions_spec, load_served
from mpreg.actors.supervisor import WorkerSlot
from mpreg.config import NodeConfig, default_node_name, short_hostname
from mpreg.membership import MemberInfo, SwimConfig
from mpreg.node.deployed import Deployed
from mpreg.node.deployments import Deployments
from mpreg.node.dispatch import CallDispatcher
from mpreg.node.forwarding import Forwarding
from mpreg.node.peering import JOIN_TIMEOUT, Peering
from mpreg.node.pressure import Backpressure
from mpreg.node.readonly import admit_read_only
from mpreg.node.routing import RoutingTable
from mpreg.node.seeds import join_seeds
from mpreg.node.session import Session
from mpreg.node.stats import NodeStatus
from mpreg.node.tokens import NodeTokens
from mpreg.node.workers import Workers
from mpreg.protocol.admin import RotateToken, TokenRotated
from mpreg.protocol.codec import dumps_value
from mpreg.protocol.credentials import Access
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.messages import (
    Call,
    CallDone,
    Cancel,
    CancelCall,
    Deploy,
    DeployStart,
    DeploySwitch,
    Endpoint,
    ForwardCall,
    ForwardCancel,
    ForwardDone,
    Gossip,
    MembersChanged,
    NodeInfo,
    Release,
    Reply,
    StatusRequest,
    SubmitBatch,
    Undeploy,
    WorkerFailed,
    WorkerReady,
)
from mpreg.tasks import TaskSet
from mpreg.transport.connection import Connection, ConnState

log = logging.getLogger(__name__)


class Node:
    """One mpreg node. ``await start()`` returns the address it listens on."""

    def __init__(self, config: NodeConfig) -> None:
        if not config.token:
            raise ValueError("a node needs a cluster token: nobody without it may run code")
        self.config = config
        self.node_id = f"{config.name or short_hostname()}-{secrets.token_hex(3)}"
        self.tokens = NodeTokens(config.token, lambda: self.peering.links.links(), self._rotated)
        # Told (old, new) after a rotation; the node's host points it at the token file.
        self.on_token_rotated: Callable[[str, str], object] = lambda old, new: None
        self.address = ""
        self.info = NodeInfo(self.node_id, config.name, "")
        self.tasks = TaskSet(f"node {self.node_id}")
        self.routes = RoutingTable()
        self.calls = CallDispatcher(
            self.routes, self._send_call, self._send_cancel, metrics=config.metrics
        )
        self.pressure = Backpressure(self.calls)  # a lagging link holds its calls there
        self.peering = Peering(
            node_id=self.node_id,
            handshake=self._handshake,
            routes=self.routes,
            calls=self.calls,
            tasks=self.tasks,
            on_message=self._on_peer_message,
            on_close=self._on_peer_close,
            on_link=self._on_peer_link,
            on_members_changed=self.announce_members,
            config=SwimConfig(
                probe_interval=config.probe_interval,
                probe_timeout=config.probe_timeout,
                suspect_timeout=config.suspect_timeout,
            ),
        )
        self.forwarding = Forwarding(self.peering.links, self.calls)
        self.workers = Workers(
            self.node_id,
            lambda: self.address,
            config.token,
            self.routes,
            self.calls,
            advertise=self.peering.advertise,
        )
        self.status = NodeStatus(
            lambda: self.info,
            self.workers.supervisor,
            self.routes,
            self.calls,
            self.peering,
        )
        self.deployed = Deployed(self.workers)
        self.deployments = Deployments(
            self.node_id, self.deployed, self.peering, self.routes, self.status.replies
        )
        self.sessions: set[Session] = set()
        self._server: asyncio.Server | None = None
        self._initial_slots: list[WorkerSlot] = []
        self._stopping = False
        self._members_announced: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"<Node {self.node_id} {self.address} links={len(self.peering.links)}>"

    # --- lifecycle --------------------------------------------------------------

    async def start(self) -> str:
        """Listen, start this node's workers and actors, join the configured peers."""
        cfg = self.config
        functions, actors = load_served(cfg)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, cfg.host, cfg.port)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"{cfg.advertise_host or cfg.host}:{port}"
        if not cfg.name:  # unnamed: "<short host name>-<port>", unique in any cluster
            cfg = self.config = replace(cfg, name=default_node_name(port))
        role: Literal["SERVER", "BALANCER"] = "SERVER" if cfg.resources or actors else "BALANCER"
        self.info = NodeInfo(self.node_id, cfg.name, self.address, role)
        log.info("node %s listening on %s", self.node_id, self.address)
        # A member from now on (of a cluster of one until it joins): peers
        # that dial it meanwhile learn its endpoints as they start serving.
        self.peering.start(MemberInfo(self.node_id, cfg.name, self.address))
        if cfg.workers > 0:
            spec = dumps_value(
                functions_spec(functions, cfg.resources), what="function worker spec"
            )
            for _ in range(cfg.workers):
                self._initial_slots.append(self.workers.add_slot("worker", "functions", spec))
        for cls in actors:
            aspec, replicas = actor_spec(cls)
            blob = dumps_value(aspec, what=f"actor {aspec.label}")
            for _ in range(replicas):
                self._initial_slots.append(self.workers.add_slot("actor", aspec.label, blob))
        # Join only once this node's own endpoints serve, so the view that
        # introduces it already carries them.
        await self.wait_ready()
        own = (self.address, f"{cfg.host}:{port}")
        await join_seeds(
            cfg.peers,
            self.join,
            timeout=JOIN_TIMEOUT,
            own=own,
            optional=cfg.join_optional,
            node=cfg.name,
        )
        return self.address

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the initial workers and actors serve (re-raises a start-up failure).

        No default deadline: loading a large model in ``__init__`` may take minutes.
        """
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(slot.ready for slot in self._initial_slots))

    async def join(self, address: str) -> None:
        """Connect to a peer node and exchange endpoints; raises ClusterUnavailable."""
        await self.peering.join(address)

    async def stop(self) -> None:
        """Stop accepting, ask workers to exit, wait for them (then kill), close links."""
        if self._stopping:
            return
        self._stopping = True
        if self._server is not None:
            self._server.close()
        self.peering.leave()  # the members drop our endpoints now, not after a timeout
        await self.workers.stop()
        await self.deployed.close()
        await self.tasks.close()
        self.peering.close_all()
        for session in list(self.sessions):
            session.conn.close()

    # --- connections --------------------------------------------------------------

    def _handshake(self, side: Literal["connector", "acceptor"]) -> Handshake:
        meta = {"node_id": self.node_id, "address": self.address}
        identity = PeerIdentity("node", self.config.name, meta)
        return Handshake(side, self.tokens.keys(side), identity)

    def _rotated(self, old: str, new: str) -> None:
        self.workers.supervisor.token = new  # a worker that restarts after the grace proves it
        self.on_token_rotated(old, new)

    def _accept(self) -> Connection:
        conn = Connection(self._handshake("acceptor"))
        self.tasks.spawn(self._admit(conn))
        return conn

    async def _admit(self, conn: Connection) -> None:
        try:
            peer = await conn.ready
        except Exception:
            return  # logged by the connection; nothing was unpickled
        if peer.access is Access.READ:  # whatever role it claims
            admit_read_only(conn, self._answer_status, self.member_addresses())
            return
        match peer.role:
            case "client":
                session = Session(
                    conn,
                    self.routes.check,
                    self.calls.submit,
                    # Too much work queued for this client: stop taking more from it.
                    on_busy=lambda busy: self.pressure.client_busy(conn, busy),
                    max_queued=self.config.max_queued_per_client,
                    max_queued_bytes=self.config.max_queued_bytes_per_client,
                )
                self.sessions.add(session)
                # A client that does not read its results may not send more work.
                conn.on_pressure = self.pressure.client_pressure
                conn.on_message = lambda c, m: self._on_client_message(session, m)
                conn.on_close = lambda c, e: self._on_client_close(session)
                # Whom the client may fail over to if this node goes away.
                conn.send(MembersChanged(self.member_addresses()))
            case "worker":
                endpoint_id = str(peer.meta.get("endpoint_id", ""))
                if not self.workers.attach(endpoint_id, conn):
                    log.warning("unknown worker %s connected; closing", endpoint_id)
                    conn.close()
                    return
                conn.on_message = self._on_worker_message
                conn.on_close = lambda c, e: self._on_worker_close(endpoint_id, c)
                conn.on_pressure = lambda c, lagging: self.pressure.link_pressure(
                    c, ("endpoint", endpoint_id), lagging
                )
            case "node":
                conn.on_message = self._on_peer_message
                conn.on_close = self._on_peer_close
                self.peering.opened(conn)

    def member_addresses(self) -> tuple[str, ...]:
        """This node's address, then those of the members now alive: where clients may go."""
        return (self.address, *self.peering.alive_addresses())

    def announce_members(self) -> None:
        """Tell every connected client the current members (after the set of peers changed)."""
        members = self.member_addresses()
        self.deployments.members_changed()
        if frozenset(members) == self._members_announced:
            return  # a duplicate link came or went: the set of members is the same
        self._members_announced = frozenset(members)
        message = MembersChanged(members)
        for session in self.sessions:
            if session.conn.state is ConnState.OPEN:
                session.conn.send(message)

    def _peer_pressure(self, conn: Connection, lagging: bool) -> None:
        """A peer link lags (or caught up): hold (or let go) the calls to its node's endpoints.

        The ``on_pressure`` of every peer link, accepted or dialled.
        """
        node_id = str(conn.peer.meta.get("node_id", "")) if conn.peer is not None else ""
        if node_id:
            self.pressure.link_pressure(conn, ("node", node_id), lagging)

    def _send_call(self, endpoint: Endpoint, call: Call) -> bool:
        if endpoint.node_id == self.node_id:
            return self.workers.send(endpoint.endpoint_id, call)
        return self.forwarding.send_call(endpoint, call)

    def _send_cancel(self, endpoint: Endpoint, call_id: int) -> None:
        if endpoint.node_id == self.node_id:
            self.workers.send(endpoint.endpoint_id, CancelCall(call_id))
        else:
            self.forwarding.send_cancel(endpoint, call_id)

    def _answer_status(self, conn: Connection, request: StatusRequest) -> None:
        rid, local_only = request.request_id, request.local_only
        self.tasks.spawn(self._reply(conn, lambda: self.status.answer(rid, local_only)))

    async def _reply(self, conn: Connection, answer: Callable[[], Awaitable[Reply]]) -> None:
        """Send the Reply ``answer()`` produces, if ``conn`` is still there to take it."""
        # A callable, not a coroutine: one cancelled before it ran is then never left unawaited.
        reply = await answer()
        if conn.state is ConnState.OPEN:
            conn.send(reply)

    # --- messages, by who sent them -------------------------------------------------

    def _on_client_message(self, session: Session, message: object) -> None:
        match message:
            case SubmitBatch():
                session.on_submit(message)
            case Release():
                session.on_release(message)
            case Cancel():
                session.on_cancel(message)
            case StatusRequest():
                self._answer_status(session.conn, message)
            case Deploy():
                is_open = lambda: session.conn.state is ConnState.OPEN  # noqa: E731
                deploy = lambda: self.deployments.deploy(session, message, is_open)  # noqa: E731
                self.tasks.spawn(self._reply(session.conn, deploy))
            case Undeploy():
                self.tasks.spawn(
                    self._reply(session.conn, lambda: self.deployments.undeploy(message))
                )
            case RotateToken():  # a full-access client: read-only ones never get here
                session.conn.send(self.tokens.on_rotate(message))
            case _:
                log.warning("client sent unexpected %s", type(message).__name__)

    def _on_client_close(self, session: Session) -> None:
        session.close()
        self.sessions.discard(session)
        self.pressure.drop_client(session.conn)
        if session in self.deployments.owned and not self._stopping:
            self.tasks.spawn(self.deployments.session_closed(session))

    def _on_worker_message(self, conn: Connection, message: object) -> None:
        match message:
            case CallDone(call_id=cid, result=result, error=error):
                self.calls.complete(cid, result, error)
            case WorkerReady():
                self.workers.on_ready(message)
            case WorkerFailed():
                self.workers.on_failed(message)
            case _:
                log.warning("worker sent unexpected %s", type(message).__name__)

    def _on_worker_close(self, endpoint_id: str, conn: Connection) -> None:
        self.pressure.link_closed(conn)
        self.workers.on_close(endpoint_id, conn)

    def _on_peer_message(self, conn: Connection, message: object) -> None:
        match message:
            case ForwardCall():
                self.forwarding.on_forward(conn, message)
            case ForwardDone(call_id=cid, result=result, error=error):
                self.forwarding.answered(conn, cid)
                self.calls.complete(cid, result, error)
            case ForwardCancel(call_id=cid):
                self.forwarding.on_forward_cancel(conn, cid)
            case Gossip():
                self.peering.on_gossip(conn, message)
            case StatusRequest():
                self._answer_status(conn, message)
            case TokenRotated():
                self.tokens.on_rotated(message)
            case Reply():
                self.status.replies.resolve(message)
            case DeployStart() | DeploySwitch() | Undeploy():
                self.tasks.spawn(self._reply(conn, lambda: self.deployments.answer(message)))
            case _:
                log.warning("peer sent unexpected %s", type(message).__name__)

    def _on_peer_link(self, conn: Connection) -> None:
        """A link to another member authenticated (dialled or accepted)."""
        conn.on_pressure = self._peer_pressure
        self.tokens.linked(conn)

    def _on_peer_close(self, conn: Connection, exc: BaseException | None) -> None:
        self.pressure.link_closed(conn)
        self.peering.on_close(conn, sent=self.forwarding.link_closed(conn))
