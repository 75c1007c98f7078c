"""What a client waits for from its node, by task id, and what becomes of it when the node is lost.

``waiting`` maps each task id of a pending request or future (and minus its
batch id, for a rejection) to its waiter. When the node goes away,
:meth:`InFlight.on_lost` keeps what may be sent to the next node (see
:mod:`mpreg.driver.failover`) and fails the rest; :meth:`InFlight.on_reconnected`
sends what was kept.
"""

from __future__ import annotations

from mpreg.driver.failover import hold_for_resend, spec_to_send
from mpreg.driver.futures import Future
from mpreg.driver.outbox import PendingRequest
from mpreg.driver.submitting import PUT_FUN
from mpreg.errors import ClusterUnavailable, MpregError, SerializationError
from mpreg.protocol.codec import loads_value
from mpreg.protocol.failures import from_info
from mpreg.protocol.messages import Put, SubmitBatch, TaskDone
from mpreg.transport.connection import Connection


class InFlight:
    """The requests and futures of one client that wait for answers."""

    def __init__(self) -> None:
        self.waiting: dict[int, PendingRequest | Future] = {}
        self._resend: list[PendingRequest] = []  # taken by the lost node: sent on reconnect

    def __repr__(self) -> str:
        return f"<InFlight waiting={len(self.waiting)} resend={len(self._resend)}>"

    def forget(self, future: Future) -> None:
        """No more answers expected for it: drop its entries and its deadline timer."""
        for key in (future.task_id, -future.task_id):
            if self.waiting.get(key) is future:
                del self.waiting[key]
        if future.timer is not None:
            future.timer.cancel()
            future.timer = None
        future.spec = None  # nothing left to re-send: let the arguments go
        future.deps = ()

    @staticmethod
    def settle(future: Future, message: TaskDone) -> None:
        if future.done():
            return  # cancelled, or expired, here first: the late answer is dropped
        future.where = message.where
        if message.error is not None:
            future._fail(from_info(message.error, message.where))
            return
        if message.held:  # the value stays on the node until asked for (or is a put's)
            future.held = message.held
            future._finish(future.local)
            return
        assert message.result is not None
        try:
            future._finish(loads_value(message.result, what=f"the result of {future.command!r}"))
        except SerializationError as exc:
            future._fail(exc)

    def send_future(self, future: Future, conn: Connection, generation: int) -> None:
        """Send a future's call on ``conn`` (of ``generation``); argument futures held on a
        node that is gone go by value."""
        spec = future.spec
        assert spec is not None
        if future.deps:
            try:
                spec = spec_to_send(future, generation)
            except MpregError as exc:
                self.forget(future)
                future._fail(exc)
                return
        if spec.fun == PUT_FUN:
            conn.send(Put(future.task_id, spec.args))
        else:
            conn.send(SubmitBatch(future.task_id, (spec,)))
        future.generation = generation

    def on_lost(self, lost: str) -> None:
        """The node at ``lost`` went away: keep what may go to the next node, fail the rest."""
        self._resend, failed = hold_for_resend(set(self.waiting.values()), lost)
        for waiter, error in failed:
            self._fail(waiter, error)

    def on_reconnected(self, conn: Connection, generation: int) -> None:
        """Send what the lost node took with it, then the futures submitted meanwhile."""
        for waiter in self._resend:
            if not waiter.done.done() and self.waiting.get(-waiter.batch.batch_id) is waiter:
                conn.send(waiter.batch)
        self._resend.clear()
        unsent = {
            w
            for w in self.waiting.values()
            if isinstance(w, Future) and not w.generation and w.lane is None  # not on a lane
        }
        for future in sorted(unsent, key=lambda f: f.task_id):  # an argument before its user
            self.send_future(future, conn, generation)

    def fail_all(self, error: ClusterUnavailable) -> None:
        """Fail every call that waits, but a request still waiting to be sent (it raises)."""
        for waiter in set(self.waiting.values()):
            if not isinstance(waiter, PendingRequest) or waiter.sent:
                self._fail(waiter, error)
        self._resend.clear()

    def _fail(self, waiter: PendingRequest | Future, error: BaseException) -> None:
        if isinstance(waiter, PendingRequest):
            waiter.fail(error)
        else:
            self.forget(waiter)
            waiter._fail(error)
