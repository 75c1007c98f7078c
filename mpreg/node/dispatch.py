"""Calls in flight on one node: pick an endpoint, send, retry, complete.

Every call this node starts (for one of its clients, or for a peer that
routed a call to one of its endpoints) is tracked here until its answer
arrives. A call whose process died is retried on another replica (or the
restarted one) while it has retries left; user exceptions are never retried.

At most ``WINDOW`` calls, and ``WINDOW_BYTES`` bytes, are outstanding per
endpoint (a bound on what a hung process is sent); past that a call waits in
:mod:`~mpreg.node.queues` for a freed slot. An endpoint whose link lags is
*held* (:meth:`CallDispatcher.hold`): sent nothing new until it drains. A call
past its deadline is answered at once, dropped if it waits, never sent late; a
cancelled one is dropped, or cancelled where it runs. A call that reached its
process keeps its slot until that process answers: it is still busy with it.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import replace

from mpreg.node.calls import (
    GONE,
    DoneCallback,
    InFlight,
    Where,
    Windows,
    chain_bytes,
    gave_up,
    holder_of,
    ignore_answer,
    never_served,
    size_of,
    split_deps,
    too_big,
    unroutable,
)
from mpreg.node.metrics import CallMetrics
from mpreg.node.pressure import Target
from mpreg.node.queues import CallQueues
from mpreg.node.routing import RoutingTable
from mpreg.protocol.codec import Blob, max_value_bytes
from mpreg.protocol.messages import Call, ChainStep, Endpoint, ErrorInfo, ErrorKind, Held

log = logging.getLogger(__name__)

PARK_SECONDS = 30.0  # how long a call without a deadline waits for a restarting replica

# Calls outstanding per endpoint; the rest wait on the node. 32 cost pipelined
# small calls 6-10% against 128; memory is bounded per client in bytes anyway.
WINDOW = 128
# Bytes outstanding per endpoint: 128 calls of up to a frame (128 MiB)
# each would be 64 GiB, all written towards a process that may have hung.
WINDOW_BYTES = 8 * 1024 * 1024
MAX_FREE_MOVES = 10  # times a call may move off a dead process without using a retry

Sender = Callable[[Endpoint, Call, bool], bool]  # (.., hold); False: unreachable now
CancelSender = Callable[[Endpoint, int], None]  # stop call_id where it runs


class CallDispatcher:
    """Routes calls over the routing table; ``send`` delivers one to an endpoint."""

    def __init__(
        self,
        routes: RoutingTable,
        send: Sender,
        send_cancel: CancelSender | None = None,
        *,
        window: int = WINDOW,
        window_bytes: int = WINDOW_BYTES,
        metrics: bool = True,
    ) -> None:
        self.routes = routes
        self._send = send
        self._send_cancel = send_cancel
        self.windows = Windows(routes, window, window_bytes)
        self._ids = itertools.count(1)
        self.in_flight: dict[int, InFlight] = {}
        self.metrics = CallMetrics(metrics)  # per endpoint: calls, errors, latency, bytes
        self.parked: dict[int, tuple[InFlight, asyncio.TimerHandle]] = {}
        self.queues: CallQueues[InFlight] = CallQueues()

    def submit(
        self,
        *,
        fun: str,
        datasets: frozenset[str],
        args: Blob,
        deps: tuple[tuple[int, Blob | Held], ...],
        command: str,
        retries: int,
        on_done: DoneCallback,
        endpoint_id: str = "",
        deadline: float = 0.0,
        hold: bool = False,
        chain: tuple[ChainStep, ...] = (),
    ) -> InFlight:
        """Start a call; ``on_done(result, error, endpoint_id)`` is called exactly once.

        ``deadline`` (absolute ``time.time()`` seconds, 0: none) travels with the call; past
        it the call is answered with a "deadline" error. The returned handle cancels the
        call. ``hold``: a big result may stay on the member that makes it (answered as a
        Held, :mod:`mpreg.node.values`). ``chain``: a fused chain's steps (mpreg.node.fusion).
        """
        call_id = next(self._ids)
        blobs, held = split_deps(deps) if deps else ((), ())
        call = Call(call_id, fun, args, blobs, command, deadline, held, chain=chain)
        record = InFlight(call, datasets, retries, on_done, self, endpoint_id, bool(endpoint_id))
        record.seq, record.hold = call_id, hold
        record.nbytes = size_of(args) + (chain_bytes(chain) if chain else 0)
        if deps:
            # Each value fits a frame (the codec checked where it was made), but
            # a call carries its arguments and every dependency's result in one.
            record.nbytes += sum(size_of(blob) for _, blob in blobs)
            record.nbytes += sum(h.nbytes for _, h in held)
            if record.nbytes > max_value_bytes():
                self._answer(record, None, too_big(command or fun, record.nbytes))
                return record
        if deadline:
            loop = asyncio.get_running_loop()
            left = deadline - time.time()
            if left <= 0:
                self._answer(record, None, gave_up(call, "deadline", time.time()))
                return record
            record.timer = loop.call_at(loop.time() + left, self._expire, record)
        self._route(record)
        return record

    @property
    def queued(self) -> int:
        """Calls waiting on this node for a free slot."""
        return self.queues.live

    def _route(self, record: InFlight) -> None:
        record.where = Where.ROUTING
        unreachable: set[str] = set()  # endpoints this attempt could not even send to
        while True:
            call = record.call
            if record.pinned:
                endpoint = self.routes.get(record.endpoint_id)
                if endpoint is not None and record.endpoint_id in record.tried:
                    endpoint = None
                if endpoint is not None and self.windows.holds_pinned(endpoint.endpoint_id):
                    record.where = Where.QUEUED  # for this endpoint alone, until its link drains
                    self.queues.push_pinned(endpoint.endpoint_id, record)
                    return
            else:
                held = self.windows.held
                endpoint = self.routes.choose(
                    call.fun,
                    record.datasets,
                    exclude=held.union(record.tried),
                    near=holder_of(call),  # a big argument stays put: its call goes to it
                )
                if endpoint is None and record.tried:
                    # Every replica was tried once; a restarted one may be back.
                    endpoint = self.routes.choose(
                        call.fun, record.datasets, exclude=held.union(unreachable)
                    )
                if endpoint is None and held and self.windows.only_held(record, unreachable):
                    self._queue(record)  # wait for a held endpoint's link to drain
                    return
            if endpoint is None and self._park(record):
                return
            if endpoint is None:
                died = bool(record.tried) or record.pinned
                self._answer(record, None, unroutable(call, record.datasets, died))
                return
            if not record.pinned and self.windows.full(endpoint.endpoint_id):
                # The least loaded match is full (of calls, or of bytes: then
                # perhaps not all are, but a slot freed anywhere takes it).
                self._queue(record)
                return
            if self._send_to(record, endpoint):
                return
            unreachable.add(endpoint.endpoint_id)

    def _queue(self, record: InFlight) -> None:
        # A retry already waited its turn once: it goes first.
        record.where = Where.QUEUED
        self.queues.push((record.call.fun, record.datasets), record, front=bool(record.tried))

    def _send_to(self, record: InFlight, endpoint: Endpoint) -> bool:
        """Send the call to ``endpoint`` (or answer it, expired); False if unreachable."""
        call = record.call
        if call.deadline and time.time() >= call.deadline:
            self._answer(record, None, gave_up(call, "deadline", time.time()))
            return True
        if record.tried:
            # A fresh id per retry: a late answer from a replica given up
            # on can never complete it.
            call = record.call = replace(call, call_id=next(self._ids))
        record.endpoint_id = endpoint.endpoint_id
        record.tried.add(endpoint.endpoint_id)
        record.started = time.perf_counter()
        record.where = Where.SENT
        self.in_flight[call.call_id] = record
        self.windows.begin(record)
        if self._send(endpoint, call, record.hold):
            return True
        self.in_flight.pop(call.call_id, None)
        self.windows.end(record)
        record.where = Where.ROUTING
        return False

    def _pump(self, endpoint_id: str) -> None:
        """A slot freed on ``endpoint_id``: fill it with the oldest call waiting for it."""
        endpoint = self.routes.get(endpoint_id)
        if endpoint is None or not self.queues.live or self.routes.is_suspended(endpoint_id):
            return
        # Checked each turn: a send can push the link past its high-water mark.
        while endpoint_id not in self.windows.held and not self.windows.full(endpoint_id):
            record = self.queues.pop_for(endpoint)
            if record is None:
                return
            if not self._send_to(record, endpoint):
                self._route(record)  # its process is unreachable right now: elsewhere
                return

    def _park(self, record: InFlight) -> bool:
        """A call with nowhere to go now: wait for a replica, or fail it fast.

        A call whose only matches are suspended (restarting) waits until one
        resumes, up to its own deadline (``PARK_SECONDS`` without one); so does
        a retry whose replicas were all tried. If every match is crash-looping,
        the call fails at once with the start-up error. False if nothing known
        can run it (never could, or was removed): the caller reports that.
        """
        call = record.call
        if record.pinned:
            return False  # a peer chose this endpoint: it decides where to retry
        if not self.routes.candidates(call.fun, record.datasets):
            return False
        crash = self.routes.crash(call.fun, record.datasets)
        if crash is not None:
            record.endpoint_id = crash.where or record.endpoint_id
            self._answer(record, None, replace(crash, command=call.command, fun=call.fun))
            return True
        loop = asyncio.get_running_loop()
        if not record.park_deadline:  # parked again after a false alarm: same deadline
            wait = call.deadline - time.time() if call.deadline else PARK_SECONDS
            record.park_deadline = loop.time() + wait
        record.where = Where.PARKED
        self.parked[id(record)] = (
            record,
            loop.call_at(record.park_deadline, self._unpark_failed, record),
        )
        return True

    def _unpark_failed(self, record: InFlight) -> None:
        if self.parked.pop(id(record), None) is None:
            return
        call = record.call
        late = bool(call.deadline) and time.time() >= call.deadline - 0.001
        self._answer(record, None, never_served(call, late, PARK_SECONDS))

    def hold(self, target: Target, held: bool) -> None:
        """Send ``target`` nothing new while ``held`` (its link lags); after, its calls go."""
        for endpoint_id in self.windows.hold(target, held):
            self._pump(endpoint_id)

    def endpoints_added(self) -> None:
        """Endpoints appeared, resumed or went: parked calls route again (or fail for good)."""
        self.windows.find_held()  # a held node's new endpoints are held too
        parked, self.parked = self.parked, {}
        for record, timer in parked.values():
            timer.cancel()
            self._route(record)
        self._pump_all()  # and calls waiting for a slot may have one now

    def _pump_all(self) -> None:
        for endpoint in self.routes.endpoints():
            if not self.queues.live:
                return
            self._pump(endpoint.endpoint_id)

    def complete(self, call_id: int, result: Blob | Held | None, error: ErrorInfo | None) -> None:
        """An answer arrived for ``call_id`` (unknown ids are ignored: late answers)."""
        record = self.in_flight.pop(call_id, None)
        if record is None:
            return
        endpoint_id = record.endpoint_id
        self.windows.end(record)
        self.metrics.done(record, result, error)
        record.where = Where.DONE
        if (
            not record.answered
            and error is not None
            and error.kind == "actor-died"
            and record.retries > 0
            and not record.pinned
        ):
            record.retries -= 1
            log.info(
                "retrying call=%s command=%s after its process died", call_id, record.call.command
            )
            self._route(record)
            self._pump(endpoint_id)
            return
        self._pump(endpoint_id)
        # After the pump: the answer may start dependents, which then queue
        # behind the calls that waited first.
        self._answer(record, result, error)

    def endpoint_lost(
        self, endpoint_ids: set[str], why: str, *, calls: Collection[int] | None = None
    ) -> None:
        """Processes or a whole peer went away: their calls died with them.

        ``calls`` narrows it to those call ids (the calls a closed link carried).
        Only the oldest call outstanding on a dead process is charged a retry:
        a process serves calls in order, so the others most likely still waited
        in its socket, and a kill storm must not use up their retries. A moved
        call may run twice (its answer died with the process): the at-least-once
        of ``retries>0``; ``retries=0`` calls never move. ``MAX_FREE_MOVES``
        stops a call that kills every process it reaches from moving for ever.
        """
        lost = sorted(
            (
                rec
                for rec in self.in_flight.values()
                if rec.endpoint_id in endpoint_ids and (calls is None or rec.call.call_id in calls)
            ),
            key=lambda rec: rec.started,
        )
        charged: set[str] = set()
        for record in lost:
            first = record.endpoint_id not in charged
            charged.add(record.endpoint_id)
            # retries=0 promises at most once: a call that may have run (its
            # answer lost with the process) never runs again, moved or not.
            if first or record.pinned or not record.retries or record.moves >= MAX_FREE_MOVES:
                self.complete(record.call.call_id, None, ErrorInfo(kind="actor-died", message=why))
                continue
            record.moves += 1
            del self.in_flight[record.call.call_id]
            self.windows.end(record)
            if record.answered:
                continue  # cancelled or expired meanwhile: nobody waits for it
            self._route(record)
        for fun, datasets in self.queues.waiting_for():
            if not self.routes.candidates(fun, datasets):
                # Nothing can ever take these from the queue: route them again,
                # which waits for a restart or fails them as unroutable.
                for record in self.queues.take_all((fun, datasets)):
                    self._route(record)
        for endpoint_id in endpoint_ids:
            # Calls a peer pinned to a lost endpoint fail now (the peer decides what next).
            for record in self.queues.take_pinned(endpoint_id):
                self._route(record)

    # --- giving up: deadlines and cancellation ----------------------------------------

    def cancel(self, record: InFlight) -> None:
        """The caller gave up on ``record``: answered "cancelled" now, stopped where it is."""
        if record.answered:
            return
        if record.where is Where.SENT:
            endpoint = self.routes.get(record.endpoint_id)
            if endpoint is not None and self._send_cancel is not None:
                self._send_cancel(endpoint, record.call.call_id)
        self._give_up(record, "cancelled")

    def _expire(self, record: InFlight) -> None:
        record.timer = None
        if not record.answered:
            self._give_up(record, "deadline")

    def _give_up(self, record: InFlight, kind: ErrorKind) -> None:
        call = record.call
        match record.where:
            case Where.QUEUED:
                record.where = Where.DONE
                record.call = GONE  # the queue holds a mark until reached, not the payload
                self.queues.stopped_waiting()
            case Where.PARKED:
                parked = self.parked.pop(id(record), None)
                if parked is not None:
                    parked[1].cancel()
                record.where = Where.DONE
            # SENT: it stays in in_flight, holding its slot, until its process answers.
        self._answer(record, None, gave_up(call, kind, time.time()))

    def _answer(
        self, record: InFlight, result: Blob | Held | None, error: ErrorInfo | None
    ) -> None:
        """Call ``on_done`` once; later answers (a late result) are dropped."""
        if record.answered:
            return
        record.answered = True
        if record.timer is not None:
            record.timer.cancel()
            record.timer = None
        on_done, record.on_done = record.on_done, ignore_answer  # let the caller's state go now
        on_done(result, error, record.endpoint_id)
