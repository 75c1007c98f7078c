"""The per-host node: listens, authenticates, routes calls, supervises workers.

Every node is a peer. It accepts three kinds of authenticated connections:
clients (each gets a :class:`~mpreg.node.session.Session`), its own worker
processes (actor replicas and plain-function workers, which it spawns), and
other nodes (which exchange their endpoints and forward calls to each other).
Payloads are forwarded as opaque Blobs; the node never unpickles a user value.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import secrets
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, Literal

from mpreg.actors.loader import actor_spec, functions_spec, load_served
from mpreg.actors.supervisor import Supervisor, WorkerSlot
from mpreg.config import NodeConfig
from mpreg.errors import ActorDiedError, ClusterUnavailable, RemoteError
from mpreg.node.dispatch import CallDispatcher
from mpreg.node.routing import RoutingTable
from mpreg.node.session import Session
from mpreg.protocol.codec import Blob, dumps_value
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.messages import (
    Assign,
    Call,
    CallDone,
    Deploy,
    Endpoint,
    EndpointsChanged,
    EndpointStats,
    ErrorInfo,
    ForwardCall,
    ForwardDone,
    NodeInfo,
    NodeStats,
    PeerHello,
    Release,
    Reply,
    Shutdown,
    StatusRequest,
    SubmitBatch,
    WorkerFailed,
    WorkerReady,
)
from mpreg.status import ClusterStatus, percentile, rss_bytes
from mpreg.transport.connection import Connection, ConnState, connect, parse_address

log = logging.getLogger(__name__)

PEER_STATUS_TIMEOUT = 3.0
JOIN_TIMEOUT = 10.0


@dataclass(eq=False)
class PeerLink:
    info: NodeInfo
    conn: Connection


class Node:
    """One mpreg node. ``await start()`` returns the address it listens on."""

    def __init__(self, config: NodeConfig) -> None:
        if not config.token:
            raise ValueError("a node needs a cluster token: nobody without it may run code")
        self.config = config
        self.node_id = f"{config.name}-{secrets.token_hex(3)}"
        self.token = config.token.encode()
        self.routes = RoutingTable()
        self.calls = CallDispatcher(self.routes, self._send_call)
        self.supervisor = Supervisor(lambda: self.address, config.token, self._on_worker_exit)
        self.address = ""
        self.info = NodeInfo(self.node_id, config.name, "")
        self.sessions: set[Session] = set()
        self.peers: dict[str, PeerLink] = {}
        self._peer_addresses: set[str] = set()
        self._workers: dict[str, Connection] = {}  # endpoint_id -> its process's connection
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._replies: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._endpoint_seq = itertools.count(1)
        self._initial_slots: list[WorkerSlot] = []
        self._joining: dict[Connection, asyncio.Future[None]] = {}
        self._peer_of: dict[Connection, str] = {}  # peer link -> its node id
        self._congested: set[Connection] = set()  # workers and peers not keeping up
        self._slow_clients: set[Connection] = set()  # clients not reading their results
        self._stopping = False

    def __repr__(self) -> str:
        return f"<Node {self.node_id} {self.address} peers={len(self.peers)}>"

    # --- lifecycle --------------------------------------------------------------

    async def start(self) -> str:
        """Listen, start this node's workers and actors, join the configured peers."""
        cfg = self.config
        functions, actors = load_served(cfg)
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(self._accept, cfg.host, cfg.port)
        port = self._server.sockets[0].getsockname()[1]
        self.address = f"{cfg.advertise_host or cfg.host}:{port}"
        role: Literal["SERVER", "BALANCER"] = "SERVER" if cfg.resources or actors else "BALANCER"
        self.info = NodeInfo(self.node_id, cfg.name, self.address, role)
        self._peer_addresses.add(self.address)
        log.info("node %s listening on %s", self.node_id, self.address)
        if cfg.workers > 0:
            spec = dumps_value(
                functions_spec(functions, cfg.resources), what="function worker spec"
            )
            for _ in range(cfg.workers):
                self._initial_slots.append(self._add_slot("worker", "functions", spec))
        for cls in actors:
            aspec, replicas = actor_spec(cls)
            blob = dumps_value(aspec, what=f"actor {aspec.label}")
            for _ in range(replicas):
                self._initial_slots.append(self._add_slot("actor", aspec.label, blob))
        # Join only once this node's own endpoints serve, so the hello that
        # introduces it already carries them.
        await self.wait_ready()
        for peer in cfg.peers:
            await self.join(peer)
        return self.address

    async def wait_ready(self, timeout: float | None = None) -> None:
        """Wait until the initial workers and actors serve (re-raises a start-up failure).

        No default deadline: loading a large model in ``__init__`` may take minutes.
        """
        async with asyncio.timeout(timeout):
            await asyncio.gather(*(slot.ready for slot in self._initial_slots))

    async def join(self, address: str) -> None:
        """Connect to a peer node and exchange endpoints; raises ClusterUnavailable."""
        host, port = parse_address(address)
        identity = PeerIdentity("node", self.config.name, {"node_id": self.node_id})
        conn = await connect(
            host,
            port,
            Handshake("connector", self.token, identity),
            on_message=self._on_peer_message,
            on_close=self._on_peer_close,
        )
        self._peer_addresses.add(address)
        answered = asyncio.get_running_loop().create_future()
        self._joining[conn] = answered
        conn.send(self._hello())
        try:
            # The peer answers our hello with its own after registering us:
            # once this returns, both sides route to each other.
            async with asyncio.timeout(JOIN_TIMEOUT):
                await asyncio.wait([answered, conn.closed], return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            conn.close()
            raise ClusterUnavailable(f"node {address} did not answer the join") from None
        finally:
            self._joining.pop(conn, None)
        if not answered.done():
            raise ClusterUnavailable(f"node {address} closed the connection during the join")

    async def stop(self) -> None:
        """Stop accepting, ask workers to exit, wait for them (then kill), close links."""
        if self._stopping:
            return
        self._stopping = True
        if self._server is not None:
            self._server.close()
        for conn in list(self._workers.values()):
            if conn.state is ConnState.OPEN:
                conn.send(Shutdown())
        await self.supervisor.stop()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for link in list(self.peers.values()):
            link.conn.close()
        for session in list(self.sessions):
            session.conn.close()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("node task failed", exc_info=task.exception())

    # --- connections --------------------------------------------------------------

    def _accept(self) -> Connection:
        identity = PeerIdentity("node", self.config.name, {"node_id": self.node_id})
        conn = Connection(Handshake("acceptor", self.token, identity))
        self._spawn(self._admit(conn))
        return conn

    async def _admit(self, conn: Connection) -> None:
        try:
            peer = await conn.ready
        except Exception:
            return  # logged by the connection; nothing was unpickled
        match peer.role:
            case "client":
                session = Session(self, conn)
                self.sessions.add(session)
                # A client that does not read its results may not send more work.
                conn.on_pressure = self._on_client_pressure
                if self._congested:
                    conn.pause_reading()
                conn.on_message = lambda c, m: self._on_client_message(session, m)
                conn.on_close = lambda c, e: self._on_client_close(session)
            case "worker":
                endpoint_id = str(peer.meta.get("endpoint_id", ""))
                slot = self.supervisor.slots.get(endpoint_id)
                if slot is None:
                    log.warning("unknown worker %s connected; closing", endpoint_id)
                    conn.close()
                    return
                conn.on_message = self._on_worker_message
                conn.on_close = lambda c, e: self._on_worker_close(endpoint_id, c)
                conn.on_pressure = self._on_pressure
                self._workers[endpoint_id] = conn
                conn.send(Assign(endpoint_id, slot.spec))
            case "node":
                conn.on_message = self._on_peer_message
                conn.on_close = self._on_peer_close
                conn.on_pressure = self._on_pressure

    # --- clients ------------------------------------------------------------------

    def _on_client_message(self, session: Session, message: object) -> None:
        match message:
            case SubmitBatch():
                session.on_submit(message)
            case Release():
                session.on_release(message)
            case StatusRequest(request_id=rid, local_only=local_only):
                self._spawn(self._answer_status(session.conn, rid, local_only))
            case Deploy():
                self._spawn(self._deploy(session.conn, message))
            case _:
                log.warning("client sent unexpected %s", type(message).__name__)

    def _on_client_close(self, session: Session) -> None:
        session.close()
        self.sessions.discard(session)
        self._slow_clients.discard(session.conn)

    async def _deploy(self, conn: Connection, message: Deploy) -> None:
        slots = [
            self._add_slot("actor", message.label, message.spec) for _ in range(message.replicas)
        ]
        try:
            await asyncio.gather(*(slot.ready for slot in slots))
            reply = Reply(message.request_id, tuple(s.endpoint_id for s in slots))
        except Exception as exc:
            reply = Reply(message.request_id, None, _error_info(exc))
        if conn.state is ConnState.OPEN:
            conn.send(reply)

    # --- workers ------------------------------------------------------------------

    def _add_slot(self, kind: str, label: str, spec: Blob) -> WorkerSlot:
        endpoint_id = f"{self.node_id}/{label}-{next(self._endpoint_seq)}"
        return self.supervisor.add(endpoint_id, kind, label, spec)

    def _on_worker_message(self, conn: Connection, message: object) -> None:
        match message:
            case CallDone(call_id=cid, result=result, error=error):
                self.calls.complete(cid, result, error)
            case WorkerReady():
                slot = self.supervisor.slots.get(message.endpoint_id)
                if slot is None:
                    return
                endpoint = Endpoint(
                    endpoint_id=message.endpoint_id,
                    node_id=self.node_id,
                    kind="actor" if slot.kind == "actor" else "worker",
                    functions=frozenset(message.functions),
                    datasets=frozenset(message.datasets),
                    label=message.label,
                )
                self.routes.add(endpoint)
                self.supervisor.mark_ready(message.endpoint_id)
                self._broadcast(EndpointsChanged(self.node_id, added=(endpoint,)))
                self.calls.endpoints_added()
            case WorkerFailed(endpoint_id=eid, error=error):
                log.error("worker %s failed to start: %s", eid, error.message)
                self.supervisor.mark_failed(eid, error)
            case _:
                log.warning("worker sent unexpected %s", type(message).__name__)

    def _on_worker_close(self, endpoint_id: str, conn: Connection) -> None:
        self._on_pressure(conn, False)
        # A restarted replica may already have registered under the same id:
        # only the current connection's loss takes the endpoint away.
        if self._workers.get(endpoint_id) is conn:
            del self._workers[endpoint_id]
            self._endpoint_gone(endpoint_id)

    def _on_worker_exit(self, slot: WorkerSlot) -> None:
        self._endpoint_gone(slot.endpoint_id)

    def _endpoint_gone(self, endpoint_id: str) -> None:
        if self.routes.get(endpoint_id) is None:
            return
        self.routes.remove(endpoint_id)
        self._broadcast(EndpointsChanged(self.node_id, removed=(endpoint_id,)))
        self.calls.endpoint_lost({endpoint_id}, f"process {endpoint_id} died")

    def _on_client_pressure(self, conn: Connection, congested: bool) -> None:
        if congested:
            self._slow_clients.add(conn)
            conn.pause_reading()
        else:
            self._slow_clients.discard(conn)
            if not self._congested:  # a node-wide pause outlasts the client's own
                conn.resume_reading()

    def _on_pressure(self, conn: Connection, congested: bool) -> None:
        """A worker or peer is not keeping up: stop taking new work from clients.

        Bounded memory under overload: the kernel's socket buffers then push
        back on the clients, whose ``drain()`` waits.
        """
        was = bool(self._congested)
        if congested:
            self._congested.add(conn)
        else:
            self._congested.discard(conn)
        if was == bool(self._congested):
            return
        for session in self.sessions:
            if self._congested:
                session.conn.pause_reading()
            elif session.conn not in self._slow_clients:
                session.conn.resume_reading()

    def _send_call(self, endpoint: Endpoint, call: Call) -> bool:
        if endpoint.node_id == self.node_id:
            conn = self._workers.get(endpoint.endpoint_id)
            if conn is None or conn.state is not ConnState.OPEN:
                return False
            conn.send(call)
            return True
        link = self.peers.get(endpoint.node_id)
        if link is None or link.conn.state is not ConnState.OPEN:
            return False
        link.conn.send(ForwardCall(call.call_id, endpoint.endpoint_id, call))
        return True

    # --- peers --------------------------------------------------------------------

    def _hello(self) -> PeerHello:
        local = tuple(ep for ep in self.routes.endpoints() if ep.node_id == self.node_id)
        known = tuple(link.info.address for link in self.peers.values())
        return PeerHello(self.info, local, known)

    def _broadcast(self, message: object) -> None:
        for link in self.peers.values():
            if link.conn.state is ConnState.OPEN:
                link.conn.send(message)

    def _on_peer_message(self, conn: Connection, message: object) -> None:
        match message:
            case ForwardCall(call_id=origin_id, endpoint_id=eid, call=call):
                self.calls.submit(
                    fun=call.fun,
                    datasets=frozenset(),
                    args=call.args,
                    deps=call.deps,
                    command=call.command,
                    retries=0,
                    endpoint_id=eid,
                    on_done=lambda r, e, w: _reply_forward(conn, origin_id, r, e),
                )
            case ForwardDone(call_id=cid, result=result, error=error):
                self.calls.complete(cid, result, error)
            case PeerHello(node=info, endpoints=endpoints, peers=peers):
                self._on_peer_hello(conn, info, endpoints, peers)
            case EndpointsChanged(node_id=nid, added=added, removed=removed):
                for endpoint in added:
                    if endpoint.node_id == nid:
                        self.routes.add(endpoint)
                for endpoint_id in removed:
                    self.routes.remove(endpoint_id)
                if removed:
                    self.calls.endpoint_lost(set(removed), f"peer {nid} lost an endpoint")
                if added:
                    self.calls.endpoints_added()
            case StatusRequest(request_id=rid, local_only=local_only):
                self._spawn(self._answer_status(conn, rid, local_only))
            case Reply(request_id=rid):
                future = self._replies.pop(rid, None)
                if future is not None and not future.done():
                    future.set_result(message)
            case _:
                log.warning("peer sent unexpected %s", type(message).__name__)

    def _on_peer_hello(
        self,
        conn: Connection,
        info: NodeInfo,
        endpoints: tuple[Endpoint, ...],
        peers: tuple[str, ...],
    ) -> None:
        if info.node_id == self.node_id:
            conn.close()
            return
        answered = self._joining.get(conn)
        if answered is None:
            conn.send(self._hello())  # we were dialled: answer the joiner
        elif not answered.done():
            answered.set_result(None)
        self.peers[info.node_id] = PeerLink(info, conn)
        self._peer_addresses.add(info.address)
        self._peer_of[conn] = info.node_id
        for endpoint in endpoints:
            if endpoint.node_id == info.node_id:
                self.routes.add(endpoint)
        self.calls.endpoints_added()
        log.info("peer %s (%s) joined with %d endpoints", info.name, info.address, len(endpoints))
        for address in peers:
            if address not in self._peer_addresses:
                self._peer_addresses.add(address)
                self._spawn(self._join_quietly(address))

    async def _join_quietly(self, address: str) -> None:
        try:
            await self.join(address)
        except Exception as exc:  # ClusterUnavailable, AuthenticationError, ...
            log.warning("could not reach peer %s: %s", address, exc)
            self._peer_addresses.discard(address)

    def _on_peer_close(self, conn: Connection, exc: BaseException | None) -> None:
        self._on_pressure(conn, False)
        node_id = self._peer_of.pop(conn, None)
        if node_id is None:
            return
        link = self.peers.get(node_id)
        if link is None or link.conn is not conn:
            return
        del self.peers[node_id]
        self._peer_addresses.discard(link.info.address)
        lost = set(self.routes.remove_node(node_id))
        log.warning(
            "peer %s (%s) is gone; dropped %d endpoints",
            link.info.name,
            link.info.address,
            len(lost),
        )
        self.calls.endpoint_lost(lost, f"node {link.info.name} went away")

    # --- status ---------------------------------------------------------------------

    def local_stats(self) -> NodeStats:
        endpoints = []
        for endpoint_id, slot in self.supervisor.slots.items():
            ep = self.routes.get(endpoint_id)
            counters = self.calls.counters.get(endpoint_id)
            lat = counters.latencies_ms if counters else []
            endpoints.append(
                EndpointStats(
                    endpoint_id=endpoint_id,
                    node_id=self.node_id,
                    kind=slot.kind,
                    label=slot.label,
                    functions=tuple(sorted(ep.functions)) if ep else (),
                    datasets=tuple(sorted(ep.datasets)) if ep else (),
                    pid=slot.pid,
                    state=slot.state.value,
                    in_flight=self.routes.outstanding(endpoint_id),
                    calls=counters.calls if counters else 0,
                    errors=counters.errors if counters else 0,
                    restarts=slot.restarts,
                    rss_bytes=rss_bytes(slot.pid),
                    p50_ms=percentile(lat, 0.5),
                    p99_ms=percentile(lat, 0.99),
                )
            )
        return NodeStats(
            node=self.info,
            state="alive",
            pid=os.getpid(),
            rss_bytes=rss_bytes(os.getpid()),
            calls=sum(c.calls for c in self.calls.counters.values()),
            in_flight=len(self.calls.in_flight),
            endpoints=tuple(endpoints),
        )

    async def cluster_status(self) -> ClusterStatus:
        """This node's stats and every reachable peer's, asked in parallel."""

        async def ask(link: PeerLink) -> NodeStats:
            rid = next(self._ids)
            future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            self._replies[rid] = future
            try:
                link.conn.send(StatusRequest(rid, local_only=True))
                async with asyncio.timeout(PEER_STATUS_TIMEOUT):
                    reply = await future
                return reply.value
            except (TimeoutError, ClusterUnavailable):
                return NodeStats(
                    node=link.info, state="unreachable", pid=0, rss_bytes=0, calls=0, in_flight=0
                )
            finally:
                self._replies.pop(rid, None)

        others = await asyncio.gather(*(ask(link) for link in list(self.peers.values())))
        return ClusterStatus((self.local_stats(), *others))

    async def _answer_status(self, conn: Connection, request_id: int, local_only: bool) -> None:
        value: object = self.local_stats() if local_only else await self.cluster_status()
        if conn.state is ConnState.OPEN:
            conn.send(Reply(request_id, value))


def _reply_forward(
    conn: Connection, call_id: int, result: Blob | None, error: ErrorInfo | None
) -> None:
    if conn.state is ConnState.OPEN:
        conn.send(ForwardDone(call_id, result, error))


def _error_info(exc: BaseException) -> ErrorInfo:
    if isinstance(exc, RemoteError):
        return ErrorInfo(
            kind="user",
            message=exc.message,
            exc_type=exc.exc_type,
            traceback=exc.remote_traceback,
            command=exc.command,
            where=exc.actor,
        )
    if isinstance(exc, ActorDiedError):
        return ErrorInfo(kind="actor-died", message=str(exc), exc_type=type(exc).__name__)
    return ErrorInfo(kind="internal", message=str(exc), exc_type=type(exc).__name__)
