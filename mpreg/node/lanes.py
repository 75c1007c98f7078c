"""Direct lanes, the node's side: which of its processes a client may call straight.

The node stays the control plane (:mod:`mpreg.protocol.lanes`): it answers a
client's :class:`LaneQuery` with the lanes of the processes that can take
the call, but only when every process in the cluster that can take it is a
routed process of this node with a lane. When a replica lives on another
member, or one has no lane (starting, restarting, staged, lanes off), the
answer is empty and the call goes through the node, which balances between
them all. A function worker not started yet (started on first use) is left
out: its started siblings take the lane calls.

Each session gets a random key in its first answer; a worker's :class:`Kept`
names it, and the node holds that result for the session (or drops it, the
session being gone). A worker's :class:`LaneCounts` go into the node's call
metrics, so status, ``mpreg top`` and Prometheus count lane calls too.
"""

from __future__ import annotations

import logging
import secrets

from mpreg.node.metrics import CallMetrics
from mpreg.node.routing import RoutingTable
from mpreg.node.session import Session
from mpreg.protocol.lanes import Kept, Lane, LaneCounts, LaneQuery, LaneRoute
from mpreg.protocol.messages import Reply

log = logging.getLogger(__name__)


class NodeLanes:
    """The lanes a node offers its clients, and what its workers send about them.

    ``lanes`` is the node's live map of endpoint id -> lane
    (:attr:`mpreg.node.workers.Workers.lanes`); ``enabled=False`` offers none.
    """

    def __init__(
        self,
        node_id: str,
        routes: RoutingTable,
        lanes: dict[str, Lane],
        metrics: CallMetrics,
        *,
        enabled: bool = True,
    ) -> None:
        self.node_id = node_id
        self.enabled = enabled
        self._routes = routes
        self._lanes = lanes
        self._metrics = metrics
        self._sessions: dict[str, Session] = {}  # key -> session
        self._keys: dict[Session, str] = {}

    def __repr__(self) -> str:
        on = "on" if self.enabled else "off"
        return f"<NodeLanes {on} lanes={len(self._lanes)} sessions={len(self._sessions)}>"

    def answer(self, session: Session, query: LaneQuery) -> Reply:
        """The client's ``Reply``: its session key and the lanes it may use for the call."""
        key = self._keys.get(session)
        if key is None:
            key = secrets.token_urlsafe(16)
            self._keys[session] = key
            self._sessions[key] = session
        return Reply(query.request_id, LaneRoute(key, self.lanes_for(query.fun, query.datasets)))

    def lanes_for(self, fun: str, datasets: frozenset[str]) -> tuple[Lane, ...]:
        """Every process that can run the call, if all are this node's, routed, with a lane.

        Otherwise ``()``: the node must keep choosing between them. A function
        worker not started yet (*cold*, started on first use) is left out
        rather than refusing lanes: its siblings that run take the lane calls,
        and it starts when a call through the node is routed to it.
        """
        if not self.enabled:
            return ()
        lanes: list[Lane] = []
        for endpoint in self._routes.candidates(fun, datasets):
            if endpoint.node_id != self.node_id:
                return ()
            if self._routes.is_cold(endpoint.endpoint_id):
                continue
            lane = self._lanes.get(endpoint.endpoint_id)
            if lane is None or self._routes.is_suspended(endpoint.endpoint_id):
                return ()
            lanes.append(lane)
        return tuple(lanes)

    def session_closed(self, session: Session) -> None:
        """The session ended: a result kept for it from now on is dropped."""
        key = self._keys.pop(session, None)
        if key is not None:
            del self._sessions[key]

    def on_worker_message(self, message: object) -> None:
        """A worker's lane message (:class:`Kept`, :class:`LaneCounts`); the rest is warned of."""
        match message:
            case Kept(session=key, task_id=task_id, result=result, where=where):
                session = self._sessions.get(key)
                if session is not None:  # else its client left: nobody will fetch it
                    session.on_kept(task_id, result, where)
            case LaneCounts(endpoint_id=endpoint_id, calls=calls, errors=errors, busy=busy):
                self._metrics.lane(endpoint_id, calls, errors, busy)
            case _:
                log.warning("worker sent unexpected %s", type(message).__name__)
