"""A worker's lane: its own port, where clients its node admitted call it directly.

The node hands the worker a lane host and a ticket with its ``Assign``
(:mod:`mpreg.protocol.lanes`); the worker listens on an ephemeral port of
that host and admits only connections that prove the ticket: not the
cluster token, not the read-only credential. A lane may send ``Call`` and
``CancelCall``; the worker answers ``CallDone`` on it exactly as it answers
its node. Nothing a lane sends can reassign or stop the worker: anything
else is ignored with a warning.

A future's call (``Call.session`` set) whose result is ``HOLD_FROM_BYTES`` or
more is not sent back on the lane: it goes to the node as :class:`Kept`, to
hold for that session, and the lane gets ``CallDone(call_id, None, None)``.
The lane's answers are counted (calls, errors, seconds from arrival to
answer) and reported to the node as :class:`LaneCounts` at most once a
second, only after there was something to count.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from mpreg.actors.environment import worker_tls
from mpreg.protocol.credentials import Key
from mpreg.protocol.failures import ErrorInfo
from mpreg.protocol.frames import DEFAULT_MAX_FRAME
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.held import HOLD_FROM_BYTES
from mpreg.protocol.lanes import Kept, LaneCounts
from mpreg.protocol.messages import Call, CallDone
from mpreg.transport.connection import HANDSHAKE_TIMEOUT, Connection, ConnState
from mpreg.transport.tls import server_context

log = logging.getLogger(__name__)

REPORT_EVERY = 1.0  # seconds: LaneCounts at most this often
MOVED = ErrorInfo(kind="moved", message="the process is stopping: the call did not run there")
# Said on every lane once a stopping worker answered what it took (call id 0: no call's).
GOODBYE = CallDone(0, None, MOVED)
GOODBYE_GRACE = 0.5  # seconds its clients have to close their lanes after it

LaneHandler = Callable[[Connection, object], None]


class LaneConnection(Connection):
    """One client's lane to this worker: its answers are counted, a future's big result kept."""

    def __init__(self, handshake: Handshake, lanes: Lanes, max_frame: int) -> None:
        super().__init__(
            handshake, on_message=lanes.on_lane_message, on_close=lanes.closed, max_frame=max_frame
        )
        self._lanes = lanes
        # call id -> (session, task id, arrival on perf_counter): calls not answered yet.
        self.calls: dict[int, tuple[str, int, float]] = {}

    def send(self, message: object) -> None:
        if type(message) is CallDone:
            asked = self.calls.pop(message.call_id, None)
            if asked is not None:
                message = self._lanes.answered(message, *asked)
        super().send(message)


class Lanes:
    """The lane listener of one worker and the lanes it admitted.

    ``node`` is the worker's connection to its node (where :class:`Kept` and
    :class:`LaneCounts` go); ``on_message`` takes each ``Call``/``CancelCall``
    from a lane, and ``on_closed`` hears of a lane that closed.
    """

    def __init__(
        self,
        endpoint_id: str,
        node: Connection,
        on_message: LaneHandler,
        on_closed: Callable[[Connection], None],
    ) -> None:
        self.endpoint_id = endpoint_id
        self.node = node
        self._on_message = on_message
        self._on_closed = on_closed
        self.server: asyncio.Server | None = None
        self.conns: set[LaneConnection] = set()
        self.calls = 0  # answered since the last report
        self.errors = 0
        self.busy = 0.0
        self._report: asyncio.TimerHandle | None = None
        self.stopping = False  # the worker is to stop: new lane calls are turned away
        self._drained: Callable[[], None] | None = None  # called once stopping and answered
        self._grace: asyncio.TimerHandle | None = None  # after the goodbye: the clients' time

    def __repr__(self) -> str:
        return f"<Lanes {self.endpoint_id} open={len(self.conns)} unreported={self.calls}>"

    async def listen(self, host: str, ticket: str) -> str:
        """Listen on an ephemeral port of ``host`` for ``ticket``; the ``host:port`` bound.

        Frames are limited as the node limits them (it announced its limit to
        the worker), and TLS is the node's when it has it. Raises OSError
        when it cannot listen there.
        """
        announced = self.node.peer.meta.get("max_frame") if self.node.peer else None
        max_frame = announced if type(announced) is int else DEFAULT_MAX_FRAME
        files = worker_tls()
        ssl = server_context(files) if files.enabled else None
        identity = PeerIdentity(
            "worker", self.endpoint_id, {"endpoint_id": self.endpoint_id, "max_frame": max_frame}
        )
        keys = [Key(ticket.encode())]  # the ticket alone: no token, no read-only credential

        def accept() -> LaneConnection:
            conn = LaneConnection(Handshake("acceptor", keys, identity), self, max_frame)
            self.conns.add(conn)
            conn.closed.add_done_callback(lambda _: self.conns.discard(conn))
            return conn

        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(
            accept, host, 0, ssl=ssl, ssl_handshake_timeout=HANDSHAKE_TIMEOUT if ssl else None
        )
        port = self.server.sockets[0].getsockname()[1]
        return f"{host}:{port}"

    def on_lane_message(self, conn: Connection, message: object) -> None:
        if type(message) is Call and isinstance(conn, LaneConnection):
            if self.stopping:  # not run: the driver sends it through its node, no retry used
                conn.send(CallDone(message.call_id, None, MOVED))
                return
            conn.calls[message.call_id] = (message.session, message.task_id, time.perf_counter())
        self._on_message(conn, message)

    def closed(self, conn: Connection, exc: BaseException | None) -> None:
        self._on_closed(conn)
        if self.stopping:
            asyncio.get_running_loop().call_soon(self._check_drained)

    def stop(self, drained: Callable[[], None]) -> None:
        """The worker is to stop: turn new lane calls away (``moved``), and call ``drained``
        once every lane call taken is answered (its clients never lose a call that ran).

        A call stuck in user code holds the stop up only until the node's grace
        ends and it kills the process, as a node call would.
        """
        self.stopping = True
        self._drained = drained
        if self.server is not None:
            self.server.close()  # no new lanes; the open ones are answered and said goodbye
        self._check_drained()

    def _check_drained(self) -> None:
        """Once every lane call taken is answered: say goodbye on every lane, then stop when
        their clients have closed them (or after ``GOODBYE_GRACE``).

        Until then a call that arrives is answered ``moved``: one sent as the
        goodbye crossed it is never lost, it goes through the node.
        """
        if self._drained is None or any(conn.calls for conn in self.conns):
            return
        if self._grace is None:
            for conn in self.conns:
                conn.send(GOODBYE)
            self._grace = asyncio.get_running_loop().call_later(GOODBYE_GRACE, self._finish)
        if not self.conns:
            self._finish()

    def _finish(self) -> None:
        if self._grace is not None:
            self._grace.cancel()
        drained, self._drained = self._drained, None
        if drained is not None:
            drained()

    def answered(self, done: CallDone, session: str, task_id: int, arrived: float) -> CallDone:
        """Count a lane's answer; a future's big result goes to the node, the lane hears None."""
        self.calls += 1
        self.errors += done.error is not None
        if self.stopping:
            asyncio.get_running_loop().call_soon(self._check_drained)
        self.busy += time.perf_counter() - arrived
        if self._report is None:
            self._report = asyncio.get_running_loop().call_later(REPORT_EVERY, self._send_counts)
        result = done.result
        if (
            session
            and result is not None
            and result.nbytes >= HOLD_FROM_BYTES
            and self.node.state is ConnState.OPEN
        ):
            self.node.send(Kept(session, task_id, result, self.endpoint_id))
            return CallDone(done.call_id, None, None)
        return done

    def _send_counts(self) -> None:
        self._report = None
        if self.calls and self.node.state is ConnState.OPEN:
            self.node.send(LaneCounts(self.endpoint_id, self.calls, self.errors, self.busy))
        self.calls, self.errors, self.busy = 0, 0, 0.0

    def close(self) -> None:
        """Stop listening and close every lane (the worker stops)."""
        if self.server is not None:
            self.server.close()
        for conn in list(self.conns):
            conn.close()
        if self._report is not None:
            self._report.cancel()
            self._report = None
