"""This node's own worker processes: their slots, their links, their endpoints.

The :class:`~mpreg.actors.supervisor.Supervisor` starts and restarts the
processes; this registry pairs each one's connection with its endpoint id,
adds the endpoint to the routing table once the worker serves (and tells the
peers). When the process or its link dies, the endpoint is *suspended* while
the supervisor restarts it (still known, so calls wait for it), resumed when
it serves again, and removed only when it will not come back. A deployed
version's slots are *staged*: they serve but are routed to only once
:meth:`Workers.activate` switches to them (:mod:`mpreg.node.deployed`).

Each process start gets a fresh lane ticket with its ``Assign``
(:mod:`mpreg.protocol.lanes`): a restarted process's old ticket admits
nobody. The lane it reports serving on is kept here (:attr:`Workers.lanes`)
while that process lives.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import Callable, Iterable

from mpreg.actors.supervisor import ActorState, Supervisor, WorkerSlot
from mpreg.node.dispatch import CallDispatcher
from mpreg.node.routing import RoutingTable
from mpreg.protocol.codec import Blob
from mpreg.protocol.lanes import Lane
from mpreg.protocol.messages import (
    Assign,
    Call,
    CancelCall,
    Endpoint,
    Shutdown,
    WorkerFailed,
    WorkerReady,
)
from mpreg.protocol.streams import StreamCredit
from mpreg.transport.connection import Connection, ConnState, parse_address
from mpreg.transport.tls import TLSFiles

log = logging.getLogger(__name__)


class Workers:
    """Worker slots of the node ``node_id`` and the live connection of each."""

    def __init__(
        self,
        node_id: str,
        node_address: Callable[[], str],
        token: str,
        routes: RoutingTable,
        calls: CallDispatcher,
        advertise: Callable[[], None],
        tls: TLSFiles | None = None,
        lane_host: str = "",
        advertise_host: str = "",
    ) -> None:
        """``lane_host``: where workers listen for lanes ("" for none); ``advertise_host``:
        the host clients dial instead, when the node has one."""
        self.node_id = node_id
        self.routes = routes
        self.calls = calls
        self._advertise = advertise  # tells the other members our endpoints changed
        self.supervisor = Supervisor(node_address, token, self._on_exit, tls=tls)
        self._conns: dict[str, Connection] = {}  # endpoint_id -> its process's connection
        self._endpoint_seq = itertools.count(1)
        # endpoint_id -> its endpoint once it serves (None before): serving, not yet routed.
        self._staged: dict[str, Endpoint | None] = {}
        self.lane_host, self._advertise_host = lane_host, advertise_host
        self._tickets: dict[str, str] = {}  # endpoint_id -> its current process's lane ticket
        self.lanes: dict[str, Lane] = {}  # endpoint_id -> its lane, while its process serves

    def __repr__(self) -> str:
        slots = len(self.supervisor.slots)
        return f"<Workers {self.node_id} slots={slots} linked={len(self._conns)}>"

    def add_slot(
        self, kind: str, label: str, spec: Blob, *, staged: bool = False, name: str = ""
    ) -> WorkerSlot:
        """Start one process serving ``spec``; its ``ready`` resolves once it serves.

        ``staged``: not routed to until :meth:`activate`. ``name`` goes in its id
        (default: ``label``).
        """
        endpoint_id = f"{self.node_id}/{name or label}-{next(self._endpoint_seq)}"
        if staged:
            self._staged[endpoint_id] = None
        return self.supervisor.add(endpoint_id, kind, label, spec)

    def activate(self, endpoint_ids: Iterable[str]) -> None:
        """Route to these staged endpoints (they serve) from now on; tell the peers."""
        for endpoint_id in endpoint_ids:
            if endpoint_id in self._staged:
                endpoint = self._staged.pop(endpoint_id)
                if endpoint is not None:
                    self.routes.add(endpoint)
        self._advertise()
        self.calls.endpoints_added()

    def unroute(self, endpoint_ids: Iterable[str]) -> None:
        """Route nothing new to these endpoints (calls on them go on); tell the peers."""
        for endpoint_id in endpoint_ids:
            self._staged.pop(endpoint_id, None)
            self.routes.remove(endpoint_id)
        self._advertise()

    def busy(self, endpoint_ids: set[str]) -> bool:
        """Whether calls are still running on any of these endpoints."""
        return any(rec.endpoint_id in endpoint_ids for rec in self.calls.in_flight.values())

    async def retire(self, endpoint_ids: Iterable[str]) -> None:
        """Stop these processes for good (unroute and drain them first)."""
        ids = list(endpoint_ids)
        for endpoint_id in ids:
            slot = self.supervisor.slots.get(endpoint_id)
            if slot is not None:
                slot.retired = True  # its exit is no death to recover from
            conn = self._conns.get(endpoint_id)
            if conn is not None and conn.state is ConnState.OPEN:
                conn.send(Shutdown())
        await asyncio.gather(*(self.supervisor.retire(eid) for eid in ids))

    def attach(self, endpoint_id: str, conn: Connection) -> bool:
        """A worker process connected: hand it its spec. False if no slot expects it."""
        slot = self.supervisor.slots.get(endpoint_id)
        if slot is None:
            return False
        self._conns[endpoint_id] = conn
        self.lanes.pop(endpoint_id, None)
        ticket = self._tickets[endpoint_id] = secrets.token_urlsafe(24) if self.lane_host else ""
        conn.send(Assign(endpoint_id, slot.spec, self.lane_host, ticket))
        return True

    def send(self, endpoint_id: str, call: Call | CancelCall | StreamCredit) -> bool:
        """Deliver ``call`` (its cancel, a stream's credit) to a local endpoint.

        False if it is unreachable now.
        """
        conn = self._conns.get(endpoint_id)
        if conn is None or conn.state is not ConnState.OPEN:
            return False
        conn.send(call)
        return True

    # --- events ---------------------------------------------------------------------

    def on_ready(self, message: WorkerReady) -> None:
        """The worker serves: route to it, tell the peers, wake calls waiting for a route."""
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
        slot.functions, slot.datasets = tuple(sorted(message.functions)), tuple(message.datasets)
        lane = self._lane(message)
        if lane is not None:
            self.lanes[message.endpoint_id] = lane
        if message.endpoint_id in self._staged:
            self._staged[message.endpoint_id] = endpoint  # routed once switched to
            self.supervisor.mark_ready(message.endpoint_id)
            return
        self.routes.add(endpoint)  # live again, if it was suspended
        self.supervisor.mark_ready(message.endpoint_id)
        self._advertise()
        self.calls.endpoints_added()

    def _lane(self, message: WorkerReady) -> Lane | None:
        """Where clients call the process that is ready, as they dial it; None: no lane."""
        ticket = self._tickets.get(message.endpoint_id, "")
        if not message.lane or not ticket:
            return None
        try:
            host, port = parse_address(message.lane)
        except ValueError as exc:
            log.warning("worker %s reported a bad lane: %s", message.endpoint_id, exc)
            return None
        return Lane(message.endpoint_id, f"{self._advertise_host or host}:{port}", ticket)

    def on_failed(self, message: WorkerFailed) -> None:
        log.error("worker %s failed to start: %s", message.endpoint_id, message.error.message)
        self.supervisor.mark_failed(message.endpoint_id, message.error)

    def on_close(self, endpoint_id: str, conn: Connection) -> None:
        # A restarted replica may already have registered under the same id:
        # only the current connection's loss counts.
        if self._conns.get(endpoint_id) is conn:
            del self._conns[endpoint_id]
            self.lanes.pop(endpoint_id, None)
            self._tickets.pop(endpoint_id, None)
            slot = self.supervisor.slots.get(endpoint_id)
            if slot is None:
                self._remove(endpoint_id)
            else:
                self._follow(slot)

    def _on_exit(self, slot: WorkerSlot) -> None:
        self._follow(slot)

    def _follow(self, slot: WorkerSlot) -> None:
        """Make the routing table (ours and the peers') follow a slot that lost its process."""
        endpoint_id = slot.endpoint_id
        if slot.state in (ActorState.FAILED, ActorState.DEAD):
            self._remove(endpoint_id)
            return
        if self.routes.get(endpoint_id) is None:
            return  # it never served: nobody routes to it
        # Still RUNNING when its link went before the supervisor saw the
        # process exit: it will be restarted (or the node stops and removes it).
        error = slot.crash if slot.state is ActorState.CRASH_LOOP else None
        if error is not None:  # new, or a newer start-up error: peers fail calls fast too
            self.routes.suspend(endpoint_id, error)
            self._advertise()
        elif self.routes.suspend(endpoint_id):
            self._advertise()  # peers stop routing to it until it serves again
        self.calls.endpoint_lost({endpoint_id}, f"process {endpoint_id} died")
        # Waiting calls may now fail fast (a crash loop) or go elsewhere.
        self.calls.endpoints_added()

    def _remove(self, endpoint_id: str) -> None:
        if self.routes.get(endpoint_id) is None:
            return
        self.routes.remove(endpoint_id)
        self._advertise()
        self.calls.endpoint_lost({endpoint_id}, f"process {endpoint_id} died")
        self.calls.endpoints_added()  # parked calls with nothing left fail now

    # --- stop ----------------------------------------------------------------------

    async def stop(self) -> None:
        """Ask every worker to exit, then let the supervisor wait for them (or kill them)."""
        for conn in list(self._conns.values()):
            if conn.state is ConnState.OPEN:
                conn.send(Shutdown())
        await self.supervisor.stop()
