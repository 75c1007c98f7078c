"""One call on its way through a node: where it is, and what its caller hears.

The records :class:`~mpreg.node.dispatch.CallDispatcher` keeps, apart from the
logic that moves them, so a session or a peer link can hold a call's handle
(:class:`InFlight`) without the dispatcher's machinery.
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from mpreg.protocol.codec import Blob
from mpreg.protocol.frames import MAX_VALUE_BYTES
from mpreg.protocol.messages import Call, ErrorInfo

DoneCallback = Callable[[Blob | None, ErrorInfo | None, str], None]


class Canceller(Protocol):
    """Who can stop a call: its dispatcher."""

    def cancel(self, record: InFlight) -> None: ...


class Where(enum.Enum):
    """Where a call is: its record is held by exactly the structure named."""

    ROUTING = "routing"
    QUEUED = "queued"  # in CallQueues
    PARKED = "parked"  # in CallDispatcher.parked (a retry waiting for a restart)
    SENT = "sent"  # in CallDispatcher.in_flight: its process has it
    DONE = "done"


def ignore_answer(result: Blob | None, error: ErrorInfo | None, where: str) -> None:
    """The callback of a call whose caller was already answered."""


GONE = Call(0, "", Blob([b""]))  # the payload of a call that will never be sent


@dataclass(eq=False, slots=True)
class InFlight:
    """One call from submit to its answer; the handle ``submit`` returns (``cancel()``)."""

    call: Call
    datasets: frozenset[str]
    retries: int
    on_done: DoneCallback
    owner: Canceller
    endpoint_id: str = ""
    pinned: bool = False  # a peer chose the endpoint: do not reroute here
    tried: set[str] = field(default_factory=set)
    started: float = 0.0
    moves: int = 0  # times it left a dead process uncharged (see endpoint_lost)
    park_deadline: float = 0.0  # loop time a parked retry gives up at
    where: Where = Where.ROUTING
    answered: bool = False  # on_done was called: a later answer only frees the slot
    timer: asyncio.TimerHandle | None = None  # fires at the deadline
    seq: int = 0  # arrival order

    @property
    def waiting(self) -> bool:
        return self.where is Where.QUEUED

    @property
    def done(self) -> bool:
        """The caller has its answer (a result, an error, cancelled or expired)."""
        return self.answered

    def cancel(self) -> None:
        """The caller gave up: drop the call if it waits, cancel it where it runs."""
        self.owner.cancel(self)


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


def too_big(what: str, size: int) -> ErrorInfo:
    """A call whose arguments and dependency results together cannot travel in one frame."""
    return ErrorInfo(
        kind="serialization",
        message=f"its arguments and dependency results come to {size:,} bytes, "
        f"more than a frame holds ({MAX_VALUE_BYTES:,} bytes)",
        command=what,
    )
