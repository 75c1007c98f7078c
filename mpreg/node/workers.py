"""This node's own worker processes: their slots, their links, their endpoints.

The :class:`~mpreg.actors.supervisor.Supervisor` starts and restarts the
processes; this registry pairs each one's connection with its endpoint id,
adds the endpoint to the routing table once the worker serves (and tells the
peers). When the process or its link dies, the endpoint is *suspended* while
the supervisor restarts it (still known, so calls wait for it), resumed when
it serves again, and removed only when it will not come back. A deploy is the
same thing asked for by a client at run time.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable

from mpreg.actors.supervisor import ActorState, Supervisor, WorkerSlot
from mpreg.node.dispatch import CallDispatcher
from mpreg.node.routing import RoutingTable
from mpreg.protocol.codec import Blob
from mpreg.protocol.failures import to_info
from mpreg.protocol.messages import (
    Assign,
    Call,
    CancelCall,
    Deploy,
    Endpoint,
    Reply,
    Shutdown,
    WorkerFailed,
    WorkerReady,
)
from mpreg.transport.connection import Connection, ConnState

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
    ) -> None:
        self.node_id = node_id
        self.routes = routes
        self.calls = calls
        self._advertise = advertise  # tells the other members our endpoints changed
        self.supervisor = Supervisor(node_address, token, self._on_exit)
        self._conns: dict[str, Connection] = {}  # endpoint_id -> its process's connection
        self._endpoint_seq = itertools.count(1)

    def __repr__(self) -> str:
        slots = len(self.supervisor.slots)
        return f"<Workers {self.node_id} slots={slots} linked={len(self._conns)}>"

    def add_slot(self, kind: str, label: str, spec: Blob) -> WorkerSlot:
        """Start one process serving ``spec``; its ``ready`` resolves once it serves."""
        endpoint_id = f"{self.node_id}/{label}-{next(self._endpoint_seq)}"
        return self.supervisor.add(endpoint_id, kind, label, spec)

    def attach(self, endpoint_id: str, conn: Connection) -> bool:
        """A worker process connected: hand it its spec. False if no slot expects it."""
        slot = self.supervisor.slots.get(endpoint_id)
        if slot is None:
            return False
        self._conns[endpoint_id] = conn
        conn.send(Assign(endpoint_id, slot.spec))
        return True

    def send(self, endpoint_id: str, call: Call | CancelCall) -> bool:
        """Deliver ``call`` (or its cancel) to a local endpoint; False if it is unreachable now."""
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
        self.routes.add(endpoint)  # live again, if it was suspended
        self.supervisor.mark_ready(message.endpoint_id)
        self._advertise()
        self.calls.endpoints_added()

    def on_failed(self, message: WorkerFailed) -> None:
        log.error("worker %s failed to start: %s", message.endpoint_id, message.error.message)
        self.supervisor.mark_failed(message.endpoint_id, message.error)

    def on_close(self, endpoint_id: str, conn: Connection) -> None:
        # A restarted replica may already have registered under the same id:
        # only the current connection's loss counts.
        if self._conns.get(endpoint_id) is conn:
            del self._conns[endpoint_id]
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

    # --- deploy and stop ------------------------------------------------------------

    async def deploy(self, message: Deploy) -> Reply:
        """Start the asked actor replicas; reply with their endpoint ids once all serve."""
        slots = [
            self.add_slot("actor", message.label, message.spec) for _ in range(message.replicas)
        ]
        try:
            await asyncio.gather(*(slot.ready for slot in slots))
            return Reply(message.request_id, tuple(s.endpoint_id for s in slots))
        except Exception as exc:
            return Reply(message.request_id, None, to_info(exc))

    async def stop(self) -> None:
        """Ask every worker to exit, then let the supervisor wait for them (or kill them)."""
        for conn in list(self._conns.values()):
            if conn.state is ConnState.OPEN:
                conn.send(Shutdown())
        await self.supervisor.stop()
