"""Direct lanes of the sync path: one call straight to a worker process, from the caller's thread.

A sync ``mpreg.request`` of one command (no futures) goes on a lane when its
node names processes that may take it (:class:`~mpreg.protocol.lanes.LaneRoute`,
asked on the sync path's node connection, again every 2 seconds, or 0.25 without lanes):
the ``Call`` leaves on a blocking connection to the process and its
``CallDone`` is read right here. Two process hops, no thread hop, no node.

A lane lost while the call ran (the process died, the link broke) is a
:class:`LaneLost`: the caller sends the request through the node with one
retry used, or raises ActorDiedError when it must not repeat. A lane that
cannot be opened sends it through the node as it is.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from dataclasses import replace
from ssl import SSLContext

from mpreg.driver.lanes import QUERY_TIMEOUT, RouteKey, route_ttl
from mpreg.errors import ClusterUnavailable, DeadlineExceeded, MpregError
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.lanes import Lane, LaneQuery, LaneRoute
from mpreg.protocol.messages import Call, CallDone, CancelCall, Reply, TaskDone, TaskSpec
from mpreg.transport.blocking import BlockingConnection
from mpreg.transport.connection import parse_address

CANCEL_SEND_TIMEOUT = 1.0  # a cancel is a courtesy: never hold the caller up for long
NO_LANES = LaneRoute("", ())


class LaneLost(Exception):
    """The lane closed after the call went out: it may have run (caught by the sync client)."""


class LaneUnopened(Exception):
    """No lane could be opened: nothing went out (caught by the sync client)."""


class SyncLanes:
    """Routes and blocking lane connections of one sync client (one caller at a time)."""

    def __init__(self, token_name: str, context: SSLContext | None, *, enabled: bool) -> None:
        self.enabled = enabled
        self._name = token_name
        self._context = context
        self._routes: dict[RouteKey, tuple[LaneRoute, float]] = {}
        self._conns: dict[str, tuple[Lane, BlockingConnection]] = {}  # by endpoint id
        self._turn = itertools.count()
        self._request_ids = itertools.count(1)
        self._epoch = 0
        self.calls = 0  # requests answered on a lane (tests and benchmarks read it)

    def __repr__(self) -> str:
        return f"<SyncLanes routes={len(self._routes)} open={len(self._conns)} calls={self.calls}>"

    def lane_for(
        self, spec: TaskSpec, node: BlockingConnection, deadline: float | None, epoch: int = 0
    ) -> Lane | None:
        """The lane to send ``spec`` on, asking ``node`` for the route when due; None: the node.

        ``epoch``: the async client's lane epoch; when it changed (it deployed, or
        changed node), every route is asked again.
        """
        if epoch != self._epoch:
            self._epoch = epoch
            self._routes.clear()
        key = (spec.fun, spec.datasets)
        known = self._routes.get(key)
        if known is None or time.monotonic() - known[1] > route_ttl(known[0]):
            route = self._ask(node, key, deadline)
            self._routes[key] = (route, time.monotonic())
        else:
            route = known[0]
        if not route.lanes:
            return None
        return route.lanes[next(self._turn) % len(route.lanes)]

    def _ask(self, node: BlockingConnection, key: RouteKey, deadline: float | None) -> LaneRoute:
        """The node's route for ``key``; no lanes if it does not answer in time.

        Other messages read meanwhile are late answers to requests that timed
        out: dropped, as the sync client's own reading drops them.
        """
        request_id = next(self._request_ids)
        until = time.monotonic() + QUERY_TIMEOUT
        if deadline is not None:
            until = min(until, deadline)
        node.send(LaneQuery(request_id, *key), until)
        while True:
            try:
                message = node.receive(until)
            except DeadlineExceeded:
                return NO_LANES
            if type(message) is Reply and message.request_id == request_id:
                value = message.value
                return value if isinstance(value, LaneRoute) else NO_LANES

    def call(
        self, lane: Lane, spec: TaskSpec, deadline: float | None, timeout: float | None
    ) -> TaskDone:
        """Run ``spec`` on ``lane``: its answer, as the node would have sent it.

        Raises LaneUnopened (nothing went out), LaneLost (it may have run),
        DeadlineExceeded (the call is cancelled where it runs).
        """
        conn = self._connection(lane)
        call = Call(spec.task_id, spec.fun, spec.args, command=spec.name, deadline=spec.deadline)
        try:
            conn.send(call, deadline)
            while True:
                message = conn.receive(deadline)
                if type(message) is CallDone and message.call_id == spec.task_id:
                    break
        except ClusterUnavailable as exc:
            self._forget(lane)
            raise LaneLost(f"lost the lane to {lane.endpoint_id}: {exc}") from exc
        except DeadlineExceeded:
            self._cancel(lane, conn, spec.task_id)
            raise DeadlineExceeded(
                f"request did not finish within {timeout:g}s (waiting on [{spec.name!r}])"
            ) from None
        except KeyboardInterrupt:
            self._cancel(lane, conn, spec.task_id)
            self._forget(lane)  # the interrupt may have cut a frame in half
            raise
        error = message.error
        if error is not None and error.kind == "moved":  # stopping, did not run it
            self._forget(lane)
            raise LaneUnopened(error.message)
        self.calls += 1
        if error is not None and not error.command:
            error = replace(error, command=spec.name)
        return TaskDone(spec.task_id, message.result, error, lane.endpoint_id)

    def _connection(self, lane: Lane) -> BlockingConnection:
        """An open connection to ``lane``: the one kept, unless its process went away."""
        kept = self._conns.get(lane.endpoint_id)
        if kept is not None:
            if kept[0] == lane and kept[1].quiet():
                return kept[1]
            # Another process now (a new ticket), or it closed or spoke (a goodbye) while idle.
            kept[1].close()
            del self._conns[lane.endpoint_id]
        host, port = parse_address(lane.address)
        handshake = Handshake("connector", lane.ticket.encode(), PeerIdentity("client", self._name))
        try:
            conn = BlockingConnection.open(host, port, handshake, context=self._context)
        except MpregError as exc:
            self.stale()
            raise LaneUnopened(str(exc)) from exc
        self._conns[lane.endpoint_id] = (lane, conn)
        return conn

    def _cancel(self, lane: Lane, conn: BlockingConnection, call_id: int) -> None:
        with contextlib.suppress(MpregError, OSError):
            conn.send(CancelCall(call_id), time.monotonic() + CANCEL_SEND_TIMEOUT)

    def _forget(self, lane: Lane) -> None:
        kept = self._conns.pop(lane.endpoint_id, None)
        if kept is not None:
            kept[1].close()
        self.stale()

    def stale(self) -> None:
        """Ask the node again before the next lane call (a process may have been replaced)."""
        self._routes.clear()

    def close(self) -> None:
        self._routes.clear()
        conns, self._conns = self._conns, {}
        for _, conn in conns.values():
            conn.close()
