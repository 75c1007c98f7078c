"""Status answers: this node's own stats, and the whole cluster's gathered from its peers.

A client's ``StatusRequest`` asks for the cluster; a peer's asks for the
node's own stats only (``local_only``), so a status never fans out twice.
Peers are asked in parallel; one that does not answer within
``PEER_STATUS_TIMEOUT`` is shown as unreachable instead of holding up the rest.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Protocol, cast

from mpreg.actors.supervisor import Supervisor, WorkerSlot
from mpreg.errors import ClusterUnavailable
from mpreg.membership import Member, MemberState
from mpreg.node.dispatch import CallDispatcher
from mpreg.node.links import LinkTable
from mpreg.node.metrics import EndpointCounters, cpu_seconds, percentile
from mpreg.node.routing import RoutingTable
from mpreg.node.store import Store
from mpreg.protocol.messages import EndpointStats, NodeInfo, NodeStats, Reply, StatusRequest
from mpreg.status import ClusterStatus, rss_bytes
from mpreg.transport.connection import Connection, ConnState
from mpreg.transport.replies import PendingReplies

PEER_STATUS_TIMEOUT = 3.0


class Members(Protocol):
    """What status reads of the membership (:class:`~mpreg.node.peering.Peering`)."""

    def members(self) -> list[Member]: ...

    def link_for(self, node_id: str) -> Connection | None: ...

    @property
    def links(self) -> LinkTable[Connection]: ...


class NodeStatus:
    """Answers status questions about one node and, through its peers, the cluster."""

    def __init__(
        self,
        info: Callable[[], NodeInfo],
        supervisor: Supervisor,
        routes: RoutingTable,
        calls: CallDispatcher,
        peers: Members,
        store: Store,
    ) -> None:
        self._info = info
        self._store = store
        self._supervisor = supervisor
        self._routes = routes
        self._calls = calls
        self._peers = peers
        self.replies = PendingReplies()  # our status questions to peers

    def __repr__(self) -> str:
        return f"<NodeStatus {self._info().node_id} asking={len(self.replies)}>"

    def local(self, with_members: bool = True) -> NodeStats:
        """This node's own figures: its processes' counters, read now, and its members.

        ``with_members=False`` leaves the member list out: a peer answering a
        cluster status, whose asker lists the members once (not N times N).
        """
        info = self._info()
        now = time.perf_counter()
        counters = self._calls.metrics.counters
        slots = self._supervisor.slots
        for gone in [e for e in counters if e not in slots and self._routes.get(e) is None]:
            del counters[gone]  # an endpoint that left for good: its counters with it
        endpoints = [
            self._endpoint(info.node_id, endpoint_id, slot, counters.get(endpoint_id), now)
            for endpoint_id, slot in slots.items()
        ]
        return NodeStats(
            node=info,
            state="alive",
            pid=os.getpid(),
            rss_bytes=rss_bytes(os.getpid()),
            calls=sum(c.calls for c in counters.values()),
            in_flight=len(self._calls.in_flight) + self._calls.queued,
            endpoints=tuple(endpoints),
            queued=self._calls.queued,
            cpu_seconds=cpu_seconds(os.getpid()),
            store_bytes=self._store.bytes,
            store_values=self._store.values,
            peer_bytes_in=sum(c.bytes_received for c in self._peers.links.links()),
            peer_bytes_out=sum(c.bytes_sent for c in self._peers.links.links()),
            members=tuple(
                (m.info.name or m.info.node_id, m.state.value) for m in self._peers.members()
            )
            if with_members
            else (),
        )

    def _endpoint(
        self,
        node_id: str,
        endpoint_id: str,
        slot: WorkerSlot,
        counters: EndpointCounters | None,
        now: float,
    ) -> EndpointStats:
        ep = self._routes.get(endpoint_id)
        window: list[int] = []
        lifetime: tuple[int, ...] = ()
        if counters is not None:
            counters.latency.advance(now)  # an idle endpoint's old calls leave the window
            window = counters.latency.window()
            lifetime = tuple(counters.latency.lifetime())
        return EndpointStats(
            endpoint_id=endpoint_id,
            node_id=node_id,
            kind=slot.kind,
            label=slot.label,
            # A replica given up on is out of routing; its slot remembers.
            functions=tuple(sorted(ep.functions)) if ep else slot.functions,
            datasets=tuple(sorted(ep.datasets)) if ep else slot.datasets,
            pid=slot.pid,
            state=slot.state.value,
            in_flight=self._routes.outstanding(endpoint_id),
            calls=counters.calls if counters else 0,
            errors=counters.errors if counters else 0,
            restarts=slot.restarts,
            rss_bytes=rss_bytes(slot.pid) if slot.pid else 0,
            p50_ms=percentile(window, 0.5) or 0.0,
            p99_ms=percentile(window, 0.99) or 0.0,
            last_error=slot.last_error,
            window_calls=sum(window),
            p90_ms=percentile(window, 0.9) or 0.0,
            bytes_in=counters.bytes_in if counters else 0,
            bytes_out=counters.bytes_out if counters else 0,
            cpu_seconds=cpu_seconds(slot.pid) if slot.pid else None,
            latency_buckets=lifetime,
            latency_sum_ms=counters.latency.sum_ms if counters else 0.0,
            queued=self._calls.queues.waiting_count(ep) if ep and self._calls.queued else 0,
            lane_calls=counters.lane_calls if counters else 0,
            lane_busy_seconds=counters.lane_busy if counters else 0.0,
        )

    async def cluster(self) -> ClusterStatus:
        """This node's stats and every reachable peer's, asked in parallel."""
        node_id = self._info().node_id
        others = [m for m in self._peers.members() if m.info.node_id != node_id]
        stats = await asyncio.gather(*(self._ask(member) for member in others))
        return ClusterStatus((self.local(), *stats))

    async def answer(self, request_id: int, local_only: bool) -> Reply:
        value: object = self.local(with_members=False) if local_only else await self.cluster()
        return Reply(request_id, value)

    async def _ask(self, member: Member) -> NodeStats:
        """A member's own stats; for one not alive or not linked, its membership state."""
        info = member.info
        link = self._peers.link_for(info.node_id)
        state = member.state.value
        if member.state is MemberState.ALIVE:
            state = "unreachable"  # unless it answers
        unknown = NodeStats(
            node=NodeInfo(info.node_id, info.name, info.address),
            state=state,
            pid=0,
            rss_bytes=0,
            calls=0,
            in_flight=0,
        )
        if (
            member.state is not MemberState.ALIVE
            or link is None
            or link.state is not ConnState.OPEN
        ):
            return unknown
        try:
            async with self.replies.expect() as (rid, future):
                link.send(StatusRequest(rid, local_only=True))
                async with asyncio.timeout(PEER_STATUS_TIMEOUT):
                    reply = await future
                return cast(NodeStats, reply.value)  # a peer answers local_only with its NodeStats
        except (TimeoutError, ClusterUnavailable):
            return unknown
