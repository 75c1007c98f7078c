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
- :mod:`~mpreg.node.stats` status answers, :mod:`~mpreg.node.values` big results
  held on the member that made them,
- :mod:`~mpreg.node.dispatch` and :mod:`~mpreg.node.routing` where each call goes,
  :mod:`~mpreg.node.streams` the items of generator calls and their credit,
  :mod:`~mpreg.node.lanes` the calls clients send straight to its processes.
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
from mpreg.node.clients import open_session
from mpreg.node.deployed import Deployed
from mpreg.node.deployments import Deployments
from mpreg.node.dispatch import CallDispatcher
from mpreg.node.forwarding import Forwarding
from mpreg.node.lanes import NodeLanes
from mpreg.node.peering import JOIN_TIMEOUT, Peering
from mpreg.node.pressure import Backpressure
from mpreg.node.readonly import admit_read_only
from mpreg.node.routing import RoutingTable
from mpreg.node.seeds import join_seeds
from mpreg.node.session import Session
from mpreg.node.stats import NodeStatus
from mpreg.node.store import Store
from mpreg.node.streams import NodeStreams
from mpreg.node.tokens import NodeTokens
from mpreg.node.values import PeerValues
from mpreg.node.workers import Workers
from mpreg.protocol.admin import TokenRotated
from mpreg.protocol.codec import dumps_value, limit_frames
from mpreg.protocol.credentials import Access
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.messages import (
    Call,
    CallDone,
    CancelCall,
    DeployStart,
    DeploySwitch,
    Endpoint,
    ForwardCall,
    ForwardCancel,
    ForwardDone,
    Gossip,
    HeldFetch,
    HeldFree,
    HeldValue,
    MembersChanged,
    NodeInfo,
    Reply,
    StatusRequest,
    Undeploy,
    WorkerFailed,
    WorkerReady,
)
from mpreg.protocol.streams import StreamCredit, StreamItem
from mpreg.tasks import TaskSet
from mpreg.transport.connection import HANDSHAKE_TIMEOUT, Connection, ConnState
from mpreg.transport.tls import TLSFiles, clear_text_warning, client_context, server_context

log = logging.getLogger(__name__)


class Node:
    """One mpreg node. ``await start()`` returns the address it listens on."""

    def __init__(self, config: NodeConfig) -> None:
        if not config.token:
            raise ValueError("a node needs a cluster token: nobody without it may run code")
        self.config = config
        self.node_id = f"{config.name or short_hostname()}-{secrets.token_hex(3)}"
        self.token = config.token.encode()
        self.tls = TLSFiles(config.tls_cert, config.tls_key, config.tls_ca)
        self._max_frame = config.max_frame_bytes
        limit_frames(config.max_frame_bytes)  # what this process pickles must fit too
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
            max_frame=config.max_frame_bytes,
            stall_timeout=config.frame_stall_timeout,
        )
        self.workers = Workers(
            self.node_id,
            lambda: self.address,
            config.token,
            self.routes,
            self.calls,
            advertise=self.peering.advertise,
            tls=self.tls,
            lane_host=config.host if config.lanes else "",
            advertise_host=config.advertise_host,
        )
        lanes, metrics = self.workers.lanes, self.calls.metrics
        self.lanes = NodeLanes(self.node_id, self.routes, lanes, metrics, enabled=config.lanes)
        self.store = Store(config.max_store_bytes)  # what is held here for futures
        self.values = PeerValues(
            self.node_id, self.store, self.peering.links, self.workers.send, self.calls.complete
        )
        self.forwarding = Forwarding(
            self.peering.links, self.calls, self.values, config.max_forwarded_per_link
        )
        self.streams = NodeStreams(
            self.node_id, self.calls, self.workers.send, self.peering.links, self.routes.check
        )
        self.forwarding.on_answered = self.streams.forward_done
        self.status = NodeStatus(
            lambda: self.info,
            self.workers.supervisor,
            self.routes,
            self.calls,
            self.peering,
            self.store,
        )
        self.deployed = Deployed(self.workers)
        self.deployments = Deployments(
            self.node_id, self.deployed, self.peering, self.routes, self.status.replies
        )
        self.sessions: set[Session] = set()
        self._server: asyncio.Server | None = None
        self._initial_slots: list[WorkerSlot] = []
        self.stopping = False
        self._members_announced: frozenset[str] = frozenset()

    def __repr__(self) -> str:
        return f"<Node {self.node_id} {self.address} links={len(self.peering.links)}>"

    # --- lifecycle --------------------------------------------------------------

    async def start(self) -> str:
        """Listen, start this node's workers and actors, join the configured peers."""
        cfg = self.config
        functions, actors = load_served(cfg)
        loop = asyncio.get_running_loop()
        secure = server_context(self.tls) if self.tls.enabled else None
        self.peering.ssl = client_context(self.tls) if self.tls.enabled else None
        self._server = await loop.create_server(
            self._accept,
            cfg.host,
            cfg.port,
            ssl=secure,
            ssl_handshake_timeout=HANDSHAKE_TIMEOUT if secure else None,
        )
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"{cfg.advertise_host or cfg.host}:{port}"
        warning = None if secure else clear_text_warning(cfg.host, self.address)
        if warning:
            log.warning("%s", warning)
        if not cfg.name:  # unnamed: "<short host name>-<port>", unique in any cluster
            cfg = self.config = replace(cfg, name=default_node_name(port))
        role: Literal["SERVER", "BALANCER"] = "SERVER" if cfg.resources or actors else "BALANCER"
        self.info = NodeInfo(self.node_id, cfg.name, self.address, role)
        log.info("node %s listening on %s", self.node_id, self.address)
        # A member from now on (of a cluster of one until it joins): peers
        # that dial it meanwhile learn its endpoints as they start serving.
        self.peering.start(MemberInfo(self.node_id, cfg.name, self.address))
        if cfg.workers > 0:  # lazy ones start on their first call, not now
            spec = functions_spec(functions, cfg.resources)
            eager = cfg.eager_workers
            self._initial_slots += self.workers.add_functions(spec, cfg.workers, eager=eager)
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
        if self.stopping:
            return
        self.stopping = True
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
        # max_frame: clients and workers size their values to it (FramedHandshake).
        meta = {"node_id": self.node_id, "address": self.address, "max_frame": self._max_frame}
        identity = PeerIdentity("node", self.config.name, meta)
        return Handshake(side, self.tokens.keys(side), identity)

    def _rotated(self, old: str, new: str) -> None:
        self.workers.supervisor.token = new  # a worker that restarts after the grace proves it
        self.on_token_rotated(old, new)

    def _accept(self) -> Connection:
        limits = self.config.max_frame_bytes, self.config.frame_stall_timeout
        conn = Connection(self._handshake("acceptor"), max_frame=limits[0], stall_timeout=limits[1])
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
                open_session(self, conn)
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

    def _send_call(self, endpoint: Endpoint, call: Call, hold: bool) -> bool:
        self.streams.before_send(endpoint, call.call_id)  # a stream's call is opened first
        if endpoint.node_id == self.node_id:
            return self.values.deliver(endpoint.endpoint_id, call)  # held deps fetched first
        return self.forwarding.send_call(endpoint, call, hold)

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
        reply = await answer()  # a callable, not a coroutine: one cancelled never lingers
        if conn.state is ConnState.OPEN:
            conn.send(reply)

    # --- messages, by who sent them -------------------------------------------------

    def _on_worker_message(self, conn: Connection, message: object) -> None:
        match message:
            case CallDone(call_id=cid, result=result, error=error):
                self.calls.complete(cid, result, error)
            case StreamItem():
                self.streams.on_item(message)
            case WorkerReady():
                self.workers.on_ready(message)
            case WorkerFailed():
                self.workers.on_failed(message)
            case _:
                self.lanes.on_worker_message(message)  # Kept, LaneCounts; warns of the rest

    def _on_worker_close(self, endpoint_id: str, conn: Connection) -> None:
        self.pressure.link_closed(conn)
        self.workers.on_close(endpoint_id, conn)

    def _on_peer_message(self, conn: Connection, message: object) -> None:
        match message:
            case ForwardCall():
                self.streams.forwarded(conn, message, self.forwarding.on_forward)
            case StreamItem():
                self.streams.on_item(message)
            case StreamCredit():
                self.streams.on_credit(conn, message)
            case ForwardDone(call_id=cid, result=result, error=error, held=held):
                self.forwarding.answered(conn, cid, held)
                self.calls.complete(cid, held or result, error)
            case HeldFetch() | HeldValue() | HeldFree():
                self.values.on_message(conn, message)
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
        conn.on_pressure = self.pressure.peer_link_pressure
        self.tokens.linked(conn)

    def _on_peer_close(self, conn: Connection, exc: BaseException | None) -> None:
        self.pressure.link_closed(conn)
        self.values.link_closed(conn)
        self.streams.link_closed(conn)
        self.peering.on_close(conn, sent=self.forwarding.link_closed(conn))
