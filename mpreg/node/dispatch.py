"""Calls in flight on one node: pick an endpoint, send, retry, complete.

Every call this node starts (for one of its clients, or for a peer that
routed a call to one of its endpoints) is tracked here until its answer
arrives. A call whose process died is retried on another replica (or the
restarted one) while it has retries left; user exceptions are never retried.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from mpreg.node.routing import RoutingTable
from mpreg.protocol.codec import Blob
from mpreg.protocol.messages import Call, Endpoint, ErrorInfo, ErrorKind

log = logging.getLogger(__name__)

DoneCallback = Callable[[Blob | None, ErrorInfo | None, str], None]
PARK_SECONDS = 30.0  # how long a call without a deadline waits for a restarting replica

Sender = Callable[[Endpoint, Call], bool]  # False: the endpoint is unreachable now


@dataclass(eq=False, slots=True)
class InFlight:
    call: Call
    datasets: frozenset[str]
    retries: int
    on_done: DoneCallback
    endpoint_id: str = ""
    pinned: bool = False  # a peer chose the endpoint: do not reroute here
    tried: set[str] = field(default_factory=set)
    started: float = 0.0
    park_deadline: float = 0.0  # loop time a parked retry gives up at


@dataclass(slots=True)
class EndpointCounters:
    calls: int = 0
    errors: int = 0
    latencies_ms: list[float] = field(default_factory=list)

    def record(self, ms: float, ok: bool) -> None:
        self.calls += 1
        if not ok:
            self.errors += 1
        lat = self.latencies_ms
        lat.append(ms)
        if len(lat) > 512:  # a sliding window is enough for p50/p99 on a dashboard
            del lat[:256]


class CallDispatcher:
    """Routes calls over the routing table; ``send`` delivers one to an endpoint."""

    def __init__(self, routes: RoutingTable, send: Sender) -> None:
        self.routes = routes
        self._send = send
        self._ids = itertools.count(1)
        self.in_flight: dict[int, InFlight] = {}
        self.counters: dict[str, EndpointCounters] = {}
        self.parked: dict[int, tuple[InFlight, asyncio.TimerHandle]] = {}

    def submit(
        self,
        *,
        fun: str,
        datasets: frozenset[str],
        args: Blob,
        deps: tuple[tuple[int, Blob], ...],
        command: str,
        retries: int,
        on_done: DoneCallback,
        endpoint_id: str = "",
    ) -> None:
        """Start a call; ``on_done(result, error, endpoint_id)`` is called exactly once."""
        call = Call(next(self._ids), fun, args, deps, command)
        record = InFlight(call, datasets, retries, on_done, pinned=bool(endpoint_id))
        record.endpoint_id = endpoint_id
        self._route(record)

    def _route(self, record: InFlight) -> None:
        unreachable: set[str] = set()  # endpoints this attempt could not even send to
        while True:
            call = record.call
            if record.tried:
                # A fresh id per retry: a late answer from a replica given up
                # on can never complete it.
                call = record.call = Call(
                    next(self._ids), call.fun, call.args, call.deps, call.command
                )
            if record.pinned:
                endpoint = self.routes.get(record.endpoint_id)
                if endpoint is not None and record.endpoint_id in record.tried:
                    endpoint = None
            else:
                endpoint = self.routes.choose(
                    call.fun, record.datasets, exclude=frozenset(record.tried)
                )
                if endpoint is None and record.tried:
                    # Every replica was tried once; a restarted one may be back.
                    endpoint = self.routes.choose(
                        call.fun, record.datasets, exclude=frozenset(unreachable)
                    )
            if endpoint is None and self._park(record):
                return
            if endpoint is None:
                died = bool(record.tried) or record.pinned
                kind: ErrorKind = "actor-died" if died else "no-route"
                record.on_done(
                    None,
                    ErrorInfo(
                        kind=kind,
                        message=(
                            f"the process running {call.command or call.fun!r} died "
                            "and no replica is left"
                            if died
                            else f"no live process serves {call.fun!r} "
                            f"with datasets {sorted(record.datasets)}"
                        ),
                        command=call.command,
                        fun=call.fun,
                        datasets=tuple(sorted(record.datasets)),
                    ),
                    record.endpoint_id,
                )
                return
            record.endpoint_id = endpoint.endpoint_id
            record.tried.add(endpoint.endpoint_id)
            record.started = time.perf_counter()
            self.in_flight[call.call_id] = record
            self.routes.begin(endpoint.endpoint_id)
            if self._send(endpoint, call):
                return
            self.in_flight.pop(call.call_id, None)
            self.routes.end(endpoint.endpoint_id)
            unreachable.add(endpoint.endpoint_id)

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
            record.on_done(
                None,
                replace(crash, command=call.command, fun=call.fun),
                crash.where or record.endpoint_id,
            )
            return True
        loop = asyncio.get_running_loop()
        if not record.park_deadline:  # parked again after a false alarm: same deadline
            wait = call.deadline - time.time() if call.deadline else PARK_SECONDS
            record.park_deadline = loop.time() + wait
        self.parked[id(record)] = (
            record,
            loop.call_at(record.park_deadline, self._unpark_failed, record),
        )
        return True

    def _unpark_failed(self, record: InFlight) -> None:
        if self.parked.pop(id(record), None) is None:
            return
        call = record.call
        if call.deadline and time.time() >= call.deadline - 0.001:
            kind: ErrorKind = "deadline"
            message = f"no replica of {call.command or call.fun!r} was serving by the deadline"
        else:
            kind = "actor-died"
            message = (
                f"no replica of {call.command or call.fun!r} was serving within {PARK_SECONDS:g}s"
            )
        record.on_done(
            None,
            ErrorInfo(kind=kind, message=message, command=call.command, fun=call.fun),
            record.endpoint_id,
        )

    def endpoints_added(self) -> None:
        """Endpoints appeared, resumed or went: parked calls route again (or fail for good)."""
        parked, self.parked = self.parked, {}
        for record, timer in parked.values():
            timer.cancel()
            self._route(record)

    def complete(self, call_id: int, result: Blob | None, error: ErrorInfo | None) -> None:
        """An answer arrived for ``call_id`` (unknown ids are ignored: late answers)."""
        record = self.in_flight.pop(call_id, None)
        if record is None:
            return
        self.routes.end(record.endpoint_id)
        counters = self.counters.setdefault(record.endpoint_id, EndpointCounters())
        counters.record((time.perf_counter() - record.started) * 1e3, error is None)
        if (
            error is not None
            and error.kind == "actor-died"
            and record.retries > 0
            and not record.pinned
        ):
            record.retries -= 1
            log.info(
                "retrying call=%s command=%s after its process died", call_id, record.call.command
            )
            self._route(record)
            return
        record.on_done(result, error, record.endpoint_id)

    def endpoint_lost(self, endpoint_ids: set[str], why: str) -> None:
        """Processes or a whole peer went away: their calls died with them."""
        lost = [cid for cid, rec in self.in_flight.items() if rec.endpoint_id in endpoint_ids]
        for call_id in lost:
            self.complete(call_id, None, ErrorInfo(kind="actor-died", message=why))
