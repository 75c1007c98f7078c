"""Backpressure on one node: which clients to stop reading from, which endpoints to hold.

A slow link only slows what goes through it. Four signals, each holding back
only what it is about:

- one client is not reading its results (``client_pressure``, its write
  buffer passed the high-water mark): stop taking work from that client alone;
- one client has more unfinished work queued on the node than its bound
  (``client_busy``, ``Session.max_queued``): stop taking work from that client
  alone until it drains below half;
- a worker link is not keeping up (``link_pressure`` with ``("endpoint", id)``):
  hold that endpoint: the dispatcher sends it nothing new until the link
  drains below its low-water mark;
- a peer link is not keeping up (``("node", node_id)``): hold every endpoint
  of that node the same way.

A held endpoint's calls wait in the dispatcher's queues (or go to a replica
that is not held); those queues are bounded per client by ``client_busy``, so
a hung peer or worker costs each client at most its own bound and every other
client keeps full service. A client resumes only when neither of its causes
holds it. No IO and no clock here: the node hands in the connections and their
signals, and the dispatcher (a :class:`Holder`) is told what to hold.
"""

from __future__ import annotations

import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING, Literal, Protocol

if TYPE_CHECKING:
    from mpreg.transport.connection import Connection

log = logging.getLogger(__name__)

TargetKind = Literal["endpoint", "node"]
Target = tuple[TargetKind, str]
"""What a link carries calls to: ``("endpoint", endpoint_id)`` (a worker's link)
or ``("node", node_id)`` (a peer's link: every endpoint of that node)."""


class Pausable(Hashable, Protocol):
    """A connection whose reading can be paused (``Connection`` in the node)."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class Holder(Protocol):
    """Who stops sending to a target while its link lags (``CallDispatcher``)."""

    def hold(self, target: Target, held: bool) -> None: ...


class Backpressure:
    """The slow and busy clients, and the links not keeping up with what they carry.

    ``holder`` is told when a target becomes held (its first lagging link) and
    when it is let go (its last lagging link drained or closed).
    """

    def __init__(self, holder: Holder | None = None) -> None:
        self._holder = holder
        self._slow: set[Pausable] = set()  # clients not reading their results
        self._busy: set[Pausable] = set()  # clients with too much work queued
        self._lagging: dict[Hashable, Target] = {}  # links not keeping up -> what they carry
        # Lagging links per target: two links to one peer (dialled and accepted) may both lag.
        self._held: dict[Target, int] = {}

    def __repr__(self) -> str:
        return (
            f"<Backpressure slow={len(self._slow)} busy={len(self._busy)} "
            f"lagging={len(self._lagging)} held={sorted(self._held)}>"
        )

    def held(self, target: Target) -> bool:
        """True while some link to ``target`` is not keeping up."""
        return target in self._held

    # --- clients: each is paused for its own causes only ---------------------------

    def drop_client(self, conn: Pausable) -> None:
        self._slow.discard(conn)
        self._busy.discard(conn)

    def client_pressure(self, conn: Pausable, congested: bool) -> None:
        """``conn`` (a client) stopped, or started again, reading its results."""
        self._pause(self._slow, conn, congested)

    def client_busy(self, conn: Pausable, busy: bool) -> None:
        """``conn`` (a client) has more work queued than its bound, or drained below it."""
        self._pause(self._busy, conn, busy)

    def _pause(self, cause: set[Pausable], conn: Pausable, paused: bool) -> None:
        if paused:
            cause.add(conn)
            conn.pause_reading()
            return
        cause.discard(conn)
        if conn not in self._slow and conn not in self._busy:  # the other cause outlasts this one
            conn.resume_reading()

    # --- links: each holds back only the calls it carries ----------------------------

    def link_pressure(self, conn: Hashable, target: Target, congested: bool) -> None:
        """A worker or peer link carrying calls to ``target`` lags (or caught up)."""
        if congested:
            if conn in self._lagging:
                return
            self._lagging[conn] = target
            count = self._held.get(target, 0)
            self._held[target] = count + 1
            if not count and self._holder is not None:
                log.info("holding calls to %s %s: its link is not keeping up", *target)
                self._holder.hold(target, True)
            return
        self.link_closed(conn)

    def peer_link_pressure(self, conn: Connection, lagging: bool) -> None:
        """A peer link lags (or caught up): hold (or let go) the calls to its node's endpoints.

        The ``on_pressure`` of every peer link, accepted or dialled.
        """
        node_id = str(conn.peer.meta.get("node_id", "")) if conn.peer is not None else ""
        if node_id:
            self.link_pressure(conn, ("node", node_id), lagging)

    def link_closed(self, conn: Hashable) -> None:
        """``conn`` caught up, or closed: it no longer holds back what it carries."""
        target = self._lagging.pop(conn, None)
        if target is None:
            return
        count = self._held[target] - 1
        if count:
            self._held[target] = count
            return
        del self._held[target]
        if self._holder is not None:
            log.info("letting calls go to %s %s: its link caught up", *target)
            self._holder.hold(target, False)
