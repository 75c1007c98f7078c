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

Plain-function workers may start on first use (:meth:`Workers.add_functions`
with ``eager=False``): the node knows their functions from the spec it built,
so their endpoints are routed (and advertised) at once, marked *cold*. The
first message sent to one starts its process; it and the messages behind it
wait here, in order, and go out when the worker serves. Their callers'
deadlines still run in the dispatcher, which keeps their window slots until
the process answers. A failed start fails the waiting calls with its start-up
error and suspends the endpoint with it for a backoff (calls fail fast, not
one spawn each); then the next call tries again.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import random
import secrets
from collections.abc import Callable, Iterable
from dataclasses import replace

from mpreg.actors.specs import FunctionsSpec
from mpreg.actors.supervisor import (
    CRASH_BASE,
    CRASH_CAP,
    ActorState,
    Supervisor,
    WorkerSlot,
    backoff,
)
from mpreg.node.dispatch import CallDispatcher
from mpreg.node.routing import RoutingTable
from mpreg.protocol.codec import Blob, dumps_value
from mpreg.protocol.lanes import Lane
from mpreg.protocol.messages import (
    Assign,
    Call,
    CancelCall,
    Endpoint,
    ErrorInfo,
    Shutdown,
    WorkerFailed,
    WorkerReady,
)
from mpreg.protocol.streams import StreamCredit
from mpreg.transport.connection import Connection, ConnState, parse_address
from mpreg.transport.tls import TLSFiles

log = logging.getLogger(__name__)

Message = Call | CancelCall | StreamCredit  # what the node sends a worker's endpoint


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
        # endpoint_id -> messages waiting for its lazy process to serve (while it starts).
        self._pending: dict[str, list[Message]] = {}
        # endpoint_id -> when a lazy endpoint whose start failed may be tried again.
        self._retry: dict[str, asyncio.TimerHandle] = {}
        self._failed_starts: dict[str, int] = {}  # endpoint_id -> lazy starts failed in a row

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

    def add_functions(self, spec: FunctionsSpec, count: int, *, eager: bool) -> list[WorkerSlot]:
        """``count`` plain-function workers serving ``spec``; the slots started now.

        ``eager=False``: no process until a call reaches one (see the module
        docstring); their endpoints are routed and advertised at once.
        """
        blob = dumps_value(spec, what="function worker spec")
        if eager:
            return [self.add_slot("worker", spec.label, blob) for _ in range(count)]
        for _ in range(count):
            endpoint_id = f"{self.node_id}/{spec.label}-{next(self._endpoint_seq)}"
            self.supervisor.add(endpoint_id, "worker", spec.label, blob, lazy=True)
            self.routes.add(
                Endpoint(
                    endpoint_id=endpoint_id,
                    node_id=self.node_id,
                    kind="worker",
                    functions=frozenset(spec.functions),
                    datasets=frozenset(spec.datasets),
                    label=spec.label,
                )
            )
            self.routes.set_cold(endpoint_id, True)
        if count:
            self._advertise()
        return []

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

    def send(self, endpoint_id: str, call: Message) -> bool:
        """Deliver ``call`` (its cancel, a stream's credit) to a local endpoint.

        A call for an idle lazy worker starts it and waits for it to serve.
        False if it is unreachable now.
        """
        pending = self._pending.get(endpoint_id)
        if pending is not None:
            pending.append(call)  # behind the call that started it, in order
            return True
        conn = self._conns.get(endpoint_id)
        if conn is None or conn.state is not ConnState.OPEN:
            # A call, or the credit that opens a stream's call (sent just before it).
            first = isinstance(call, Call) or (isinstance(call, StreamCredit) and call.opens)
            return first and self._start(endpoint_id, call)
        conn.send(call)
        return True

    def _start(self, endpoint_id: str, first: Message) -> bool:
        """Start an idle lazy worker for ``first``; False if it is not idle or may not start yet."""
        if endpoint_id in self._retry or not self.supervisor.start(endpoint_id):
            return False
        log.info("starting %s for call %s", endpoint_id, first.call_id)
        self._pending[endpoint_id] = [first]
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
        self.routes.set_cold(message.endpoint_id, False)
        self._failed_starts.pop(message.endpoint_id, None)
        self.supervisor.mark_ready(message.endpoint_id)
        conn = self._conns.get(message.endpoint_id)
        for waiting in self._pending.pop(message.endpoint_id, ()):
            if conn is not None:  # it just said it serves: its link is there
                conn.send(waiting)
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
        if slot.lazy and not slot.served and slot.state is not ActorState.DEAD:
            # Its first start: the supervisor retries it while its calls wait
            # here, until it serves or goes back to idle (given up on).
            if slot.state is ActorState.IDLE:
                self._start_failed(slot)
            return
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

    def _start_failed(self, slot: WorkerSlot) -> None:
        """A lazy worker's start was given up on: fail its waiting calls, retry later."""
        endpoint_id = slot.endpoint_id
        error = slot.crash or ErrorInfo(kind="actor-died", message=f"{endpoint_id} did not start")
        waiting = self._pending.pop(endpoint_id, [])
        log.error("lazy worker %s failed to start: %s", endpoint_id, error.message)
        # Suspended with the error first: a retry of a waiting call fails fast
        # (or goes to another worker), instead of starting this one again.
        self.routes.suspend(endpoint_id, error)
        self._advertise()
        failed = self._failed_starts[endpoint_id] = self._failed_starts.get(endpoint_id, 0) + 1
        delay = backoff(failed - 1, CRASH_BASE, CRASH_CAP, random.Random())
        loop = asyncio.get_running_loop()
        self._retry[endpoint_id] = loop.call_later(delay, self._may_retry, endpoint_id)
        for message in waiting:
            if isinstance(message, Call):
                why = replace(error, command=message.command, fun=message.fun)
                self.calls.complete(message.call_id, None, why)
        self.calls.endpoints_added()

    def _may_retry(self, endpoint_id: str) -> None:
        """The backoff after a failed lazy start is over: the next call starts it again."""
        del self._retry[endpoint_id]
        if self.routes.resume(endpoint_id):
            self._advertise()
            self.calls.endpoints_added()

    def _remove(self, endpoint_id: str) -> None:
        self._pending.pop(endpoint_id, None)  # its calls are in flight: endpoint_lost ends them
        if self.routes.get(endpoint_id) is None:
            return
        self.routes.remove(endpoint_id)
        self._advertise()
        self.calls.endpoint_lost({endpoint_id}, f"process {endpoint_id} died")
        self.calls.endpoints_added()  # parked calls with nothing left fail now

    # --- stop ----------------------------------------------------------------------

    async def stop(self) -> None:
        """Ask every worker to exit, then let the supervisor wait for them (or kill them)."""
        for timer in self._retry.values():
            timer.cancel()
        self._retry.clear()
        for conn in list(self._conns.values()):
            if conn.state is ConnState.OPEN:
                conn.send(Shutdown())
        await self.supervisor.stop()
