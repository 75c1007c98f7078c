"""Direct lanes of the async client: a future's call straight to a worker process, and back.

The node says which of its processes may take a call directly
(:class:`~mpreg.protocol.lanes.LaneRoute`, asked once per function and
datasets and refreshed every ``ROUTE_TTL`` seconds in the background); the
client then sends the future's ``Call`` on a connection of its own to the
least busy of those processes (:class:`LaneLink`), and the ``CallDone`` comes
straight back: two process hops instead of four, and none of the node's work.

What does not go on a lane goes through the node as before: puts, calls that
use other futures, calls whose replicas live on other members too (the node
balances those), a route not known yet (the first call asks), and calls past
``LANE_WINDOW`` in flight on every lane.

The guarantees hold on a lane as through the node:
- a big result goes to the node (``Kept``), which holds it for the session as
  any future's result: the lane answers ``CallDone(id, None, None)`` and the
  node's ``TaskDone`` settles the future;
- a lane lost while calls run (the process died, the link broke) sends them
  through the node, each with one retry used; a call with ``retries=0`` fails
  with ActorDiedError;
- cancel and deadlines send ``CancelCall`` on the lane;
- a lane future used by a call through the node is first given to the node
  (``Put`` of its value under its task id, once: :mod:`mpreg.driver.lane_deps`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol

from mpreg.config import lanes_default
from mpreg.driver.futures import LANE, Future
from mpreg.driver.lane_deps import LaneDeps
from mpreg.driver.submitting import PUT_FUN
from mpreg.errors import ActorDiedError, MpregError
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.lanes import Lane, LaneQuery, LaneRoute
from mpreg.protocol.messages import (
    Call,
    CallDone,
    CancelCall,
    Reply,
    SubmitBatch,
    TaskDone,
    TaskSpec,
)
from mpreg.tasks import TaskSet
from mpreg.transport.connection import Connection, ConnState, parse_address
from mpreg.transport.dial import connect

log = logging.getLogger(__name__)

LANE_WINDOW = 128  # calls in flight per lane per client; the rest go through the node
LANE_WINDOW_BYTES = 8 * 1024 * 1024  # and their arguments' bytes (the node's per-process bound)
ROUTE_TTL = 2.0  # seconds a route is used before it is asked again (in the background)
# A route without lanes, sooner: its processes may be starting (a worker started on
# first use serves a moment after the call that started it).
EMPTY_ROUTE_TTL = 0.25
QUERY_TIMEOUT = 5.0  # a node that does not answer a LaneQuery: no lanes for that route

RouteKey = tuple[str, frozenset[str]]


class LaneOwner(Protocol):
    """What the lanes need of the :class:`~mpreg.driver.client.Client` (on its loop)."""

    name: str

    @property
    def generation(self) -> int: ...

    async def _ask(self, make: object, timeout: float | None, what: str) -> Reply: ...

    def _send_future(self, future: Future) -> None: ...

    def _settle_lane(self, future: Future, message: TaskDone) -> None: ...

    def _fail_future(self, future: Future, error: BaseException) -> None: ...

    def _send_notice(self, message: object) -> None: ...


@dataclass(slots=True)
class _Route:
    route: LaneRoute | None  # None: being asked for the first time
    fetched: float  # time.monotonic() of the answer
    asking: bool = False


class LaneLink:
    """One connection to one worker process, and the futures whose calls it carries."""

    __slots__ = ("conn", "endpoint_id", "failed", "lane", "nbytes", "pending")

    def __init__(self, lane: Lane) -> None:
        self.lane = lane
        self.endpoint_id = lane.endpoint_id
        self.conn: Connection | None = None  # None while dialling
        self.pending: dict[int, tuple[Future, int]] = {}  # call id (task id) -> future, bytes
        self.nbytes = 0  # of the arguments of the calls in flight
        self.failed = False  # dialling failed or the link was lost: never used again

    def __repr__(self) -> str:
        return f"<LaneLink {self.endpoint_id} pending={len(self.pending)}>"

    def forget(self, call_id: int) -> Future | None:
        """The future of call ``call_id``, no longer in flight here (None: not in flight)."""
        entry = self.pending.pop(call_id, None)
        if entry is None:
            return None
        self.nbytes -= entry[1]
        return entry[0]

    def takes_more(self) -> bool:
        """Open, and under the window: ``LANE_WINDOW`` calls, and ``LANE_WINDOW_BYTES`` of
        arguments (which bound what waits at a process that stopped reading, as on the
        node; one call always fits)."""
        pending = self.pending
        if not pending:
            return self.usable
        return self.usable and len(pending) < LANE_WINDOW and self.nbytes < LANE_WINDOW_BYTES

    @property
    def usable(self) -> bool:
        conn = self.conn
        return conn is not None and conn.state is ConnState.OPEN and not self.failed


class Lanes:
    """The lanes of one client: routes by (function, datasets), links by endpoint."""

    def __init__(self, owner: LaneOwner, *, enabled: bool, ssl: object = None) -> None:
        self._owner = owner
        self.enabled = enabled
        self._ssl = ssl
        self._routes: dict[RouteKey, _Route] = {}
        self._links: dict[str, LaneLink] = {}
        self._tasks = TaskSet("client lanes")
        self.deps = LaneDeps(owner)  # lane futures that calls through the node use
        self._turn = 0  # where the next pick starts (ties go round the lanes)
        self.epoch = 0  # changes whenever every route is forgotten
        self.calls = 0  # futures whose calls went on a lane (tests and benchmarks read it)

    def __repr__(self) -> str:
        return f"<Lanes routes={len(self._routes)} links={len(self._links)} calls={self.calls}>"

    # --- sending ----------------------------------------------------------------------

    def send(self, future: Future) -> bool:
        """Send the future's call on a lane if it may go on one; False: send it through the node."""
        spec = future.spec
        if not self.enabled or spec is None or spec.deps or spec.fun == PUT_FUN:
            return False
        route = self._route((spec.fun, spec.datasets))
        if route is None or not route.lanes:
            return False
        link = self._pick(route)
        if link is None:
            return False
        assert link.conn is not None
        # Positional: the keyword form costs a tenth of the send. A request's result
        # comes back whole (no session: never Kept).
        session = route.session if spec.keep else ""
        call = Call(
            future.task_id,
            spec.fun,
            spec.args,
            (),
            spec.name,
            spec.deadline,
            (),
            session,
            spec.task_id,
        )
        link.conn.send(call)
        size = spec.args.nbytes
        link.pending[future.task_id] = (future, size)
        link.nbytes += size
        future.lane = link
        future.generation = LANE
        self.calls += 1
        return True

    def route_has_lanes(self, spec: TaskSpec) -> bool:
        """True if ``spec`` may go on a lane now (its route is known and names open lanes)."""
        if not self.enabled:
            return False
        route = self._route((spec.fun, spec.datasets))
        return route is not None and any(
            (link := self._links.get(lane.endpoint_id)) is not None and link.usable
            for lane in route.lanes
        )

    def _pick(self, route: LaneRoute) -> LaneLink | None:
        """The open lane with fewest of our calls in flight, under the window; dials the rest.

        Ties go round: the scan starts one lane further each time.
        """
        lanes = route.lanes
        if len(lanes) == 1:  # one process: the common case, without the round
            link = self._links.get(lanes[0].endpoint_id)
            if link is not None and link.lane == lanes[0]:
                return link if link.takes_more() else None
        best: LaneLink | None = None
        start = self._turn % len(lanes)
        self._turn += 1
        for lane in lanes[start:] + lanes[:start]:
            link = self._links.get(lane.endpoint_id)
            if link is None or link.lane != lane:
                self._dial(lane)  # a new process, or one not dialled yet
                continue
            if link.takes_more() and (best is None or len(link.pending) < len(best.pending)):
                best = link
        return best

    def cancel(self, futures: Iterable[Future]) -> None:
        """Stop these futures' calls where they run (they were settled here already)."""
        for future in futures:
            link = future.lane
            if not isinstance(link, LaneLink):
                continue
            future.lane = None
            if link.forget(future.task_id) is not None and link.usable:
                assert link.conn is not None
                link.conn.send(CancelCall(future.task_id))

    # --- answers ------------------------------------------------------------------------

    def _on_message(self, link: LaneLink, message: object) -> None:
        if type(message) is not CallDone:
            log.warning("lane %s sent unexpected %s", link.endpoint_id, type(message).__name__)
            return
        if message.call_id == 0:  # the process is stopping: its goodbye
            link.failed = True
            self._stale()
            self._close_if_done(link)
            return
        future = link.forget(message.call_id)
        if future is None:
            return  # cancelled or expired here first
        future.lane = None
        if message.error is not None and message.error.kind == "moved":
            # The process is stopping and did not run it: through the node, no retry
            # used, and this lane no more.
            link.failed = True
            self._stale()
            future.generation = 0
            self._owner._send_future(future)
            self._close_if_done(link)
            return
        if message.result is None and message.error is None:
            # Kept: the node holds the value for the session and says so with a TaskDone.
            future.generation = self._owner.generation
            return
        error = message.error
        if error is not None and not error.command:
            error = replace(error, command=future.command)
        done = TaskDone(future.task_id, message.result, error, link.endpoint_id)
        self._owner._settle_lane(future, done)

    def _on_close(self, link: LaneLink) -> None:
        """The lane is gone: its calls go through the node, each with one retry used."""
        link.failed = True  # kept: the same lane is not dialled again (a restart has a new one)
        self._stale()
        pending, link.pending = link.pending, {}
        link.nbytes = 0
        for future, _ in pending.values():
            future.lane = None
            if future.done() or future.spec is None:
                continue
            if future.spec.retries <= 0:
                self._owner._fail_future(
                    future,
                    ActorDiedError(
                        f"{future.command}: lost the lane to {link.endpoint_id} while it ran; "
                        "not re-sent because it must not repeat (retries=0)"
                    ),
                )
                continue
            future.spec = replace(future.spec, retries=future.spec.retries - 1)
            future.generation = 0  # unsent: goes now, or once the node link is back
            self._owner._send_future(future)

    # --- routes and links -----------------------------------------------------------------

    @staticmethod
    def _close_if_done(link: LaneLink) -> None:
        """Close a lane no longer used once nothing waits on it (its process is stopping)."""
        if link.failed and not link.pending and link.conn is not None:
            link.conn.close()

    def _stale(self) -> None:
        """Ask the node again before long: a process was replaced, or is stopping."""
        for route in self._routes.values():
            route.fetched = 0.0

    def _route(self, key: RouteKey) -> LaneRoute | None:
        entry = self._routes.get(key)
        now = time.monotonic()
        if entry is None:
            entry = self._routes[key] = _Route(None, 0.0)
        if not entry.asking and now - entry.fetched > route_ttl(entry.route):
            entry.asking = True
            self._tasks.spawn(self._ask(key, entry))
        return entry.route

    async def _ask(self, key: RouteKey, entry: _Route) -> None:
        fun, datasets = key
        try:
            reply = await self._owner._ask(
                lambda rid: LaneQuery(rid, fun, datasets), QUERY_TIMEOUT, "lanes"
            )
            route = reply.value if isinstance(reply.value, LaneRoute) else None
        except MpregError as exc:
            log.debug("no lanes for %s: %s", fun, exc)
            route = None
        entry.route = route if route is not None else LaneRoute("", ())
        entry.fetched = time.monotonic()
        entry.asking = False
        for lane in entry.route.lanes:
            if lane.endpoint_id not in self._links:
                self._dial(lane)

    def _dial(self, lane: Lane) -> None:
        old = self._links.get(lane.endpoint_id)
        if old is not None and old.lane == lane:
            return  # dialling, open, or failed (a restarted process has another ticket)
        link = self._links[lane.endpoint_id] = LaneLink(lane)
        self._tasks.spawn(self._open(link))

    async def _open(self, link: LaneLink) -> None:
        host, port = parse_address(link.lane.address)
        identity = PeerIdentity("client", self._owner.name)
        handshake = Handshake("connector", link.lane.ticket.encode(), identity)
        try:
            conn = await connect(
                host,
                port,
                handshake,
                on_message=lambda _c, m: self._on_message(link, m),
                on_close=lambda _c, _e: self._on_close(link),
                ssl=self._ssl,  # type: ignore[arg-type]
            )
        except MpregError as exc:
            log.debug("lane %s not opened: %s", link.endpoint_id, exc)
            link.failed = True
            return
        if link.failed or self._links.get(link.endpoint_id) is not link:
            conn.close()  # forgotten meanwhile (the node changed)
            return
        link.conn = conn

    def reset(self) -> None:
        """Forget every route and idle lane (the client changed node, or deployed).

        A lane with calls on it is kept until they are answered or it closes.
        """
        self.epoch += 1  # the sync path follows (mpreg.driver.sync_lanes)
        self._routes.clear()
        links, self._links = self._links, {}
        for link in links.values():
            if not link.pending:
                link.failed = True
                if link.conn is not None:
                    link.conn.close()

    async def close(self) -> None:
        """Close every lane (the client closed: its futures have failed already)."""
        self._routes.clear()
        links, self._links = self._links, {}
        for link in links.values():
            link.failed = True
            if link.conn is not None:
                link.conn.close()
        await self._tasks.close()


def one_call(batch: SubmitBatch) -> bool:
    """A request a lane can carry: one command that uses no other's result, fields or futures."""
    if len(batch.tasks) != 1 or batch.trace:
        return False
    spec = batch.tasks[0]
    return not spec.deps and not spec.fields and spec.want_result


def lanes_wanted(lanes: bool | None) -> bool:
    """``lanes`` as given, else as ``$MPREG_LANES`` says, as for a node (on by default)."""
    return lanes_default() if lanes is None else lanes


def route_ttl(route: LaneRoute | None) -> float:
    """How long ``route`` is used before the node is asked again."""
    return ROUTE_TTL if route is not None and route.lanes else EMPTY_ROUTE_TTL
