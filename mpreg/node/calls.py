"""One call on its way through a node: where it is, and what its caller hears.

The records :class:`~mpreg.node.dispatch.CallDispatcher` keeps, apart from the
logic that moves them, so a session or a peer link can hold a call's handle
(:class:`InFlight`) without the dispatcher's machinery; and the errors its
caller hears when the call cannot run; and what each endpoint may be sent now
(:class:`Windows`).
"""

from __future__ import annotations

import asyncio
import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from mpreg.node.pressure import Target
from mpreg.node.routing import RoutingTable
from mpreg.protocol.codec import Blob, max_value_bytes
from mpreg.protocol.messages import Call, ChainStep, ErrorInfo, ErrorKind, Held

# (result, error, endpoint id): the result a Blob, or Held on the member that made it.
DoneCallback = Callable[[Blob | Held | None, ErrorInfo | None, str], None]


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


def ignore_answer(result: Blob | Held | None, error: ErrorInfo | None, where: str) -> None:
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
    nbytes: int = 0  # of its arguments and dependency results: counted in flight per endpoint
    hold: bool = False  # its result may stay where it is made (mpreg.node.values)

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


class Windows:
    """What each endpoint may be sent now: its window of calls and bytes, and its hold.

    An endpoint is full at ``window`` calls or ``window_bytes`` bytes
    outstanding; the call that crosses the byte bound still went (so a call
    larger than the bound goes too, alone): at most ``window_bytes`` plus one
    call are outstanding. It is *held* while its worker link, or its node's
    peer link, lags: ``held`` has its id, one lookup on the hot path.
    """

    def __init__(self, routes: RoutingTable, window: int, window_bytes: int) -> None:
        self.routes = routes
        self.window = window
        self.window_bytes = window_bytes
        self.bytes: dict[str, int] = {}  # endpoint_id -> bytes of its outstanding calls
        self._endpoints: set[str] = set()  # held: their worker link lags
        self._nodes: set[str] = set()  # held: their peer link lags
        self.held: frozenset[str] = frozenset()  # the endpoint ids the two above hold

    def __repr__(self) -> str:
        return f"<Windows busy={len(self.bytes)} held={sorted(self.held)}>"

    def full(self, endpoint_id: str) -> bool:
        return (
            self.routes.outstanding(endpoint_id) >= self.window
            or self.bytes.get(endpoint_id, 0) >= self.window_bytes
        )

    def begin(self, record: InFlight) -> None:
        """``record`` was sent to ``record.endpoint_id``."""
        endpoint_id = record.endpoint_id
        self.routes.begin(endpoint_id)
        self.bytes[endpoint_id] = self.bytes.get(endpoint_id, 0) + record.nbytes

    def end(self, record: InFlight) -> None:
        """``record`` left its endpoint's window (answered, moved, or never sent)."""
        endpoint_id = record.endpoint_id
        self.routes.end(endpoint_id)
        left = self.bytes.get(endpoint_id, 0) - record.nbytes
        if left > 0:
            self.bytes[endpoint_id] = left
        else:
            self.bytes.pop(endpoint_id, None)

    def holds_pinned(self, endpoint_id: str) -> bool:
        """Whether calls pinned to ``endpoint_id`` wait for it: held, and not restarting.

        A restarting endpoint's pinned calls fail as they would unheld: they never wait.
        """
        return endpoint_id in self.held and not self.routes.is_suspended(endpoint_id)

    def only_held(self, record: InFlight, unreachable: set[str]) -> bool:
        """Whether an endpoint could take ``record`` now but for its hold."""
        call, exclude = record.call, frozenset(unreachable)
        return self.routes.choose(call.fun, record.datasets, exclude=exclude) is not None

    def hold(self, target: Target, held: bool) -> frozenset[str]:
        """Hold ``target`` (``held``) or let it go; returns the endpoint ids let go."""
        kind, key = target
        keys = self._nodes if kind == "node" else self._endpoints
        if held:
            keys.add(key)
        else:
            keys.discard(key)
        was = self.held
        self.find_held()
        return was - self.held

    def find_held(self) -> None:
        """``held`` from the held endpoints and nodes, and the endpoints known now."""
        held = set(self._endpoints)
        if self._nodes:
            nodes = self._nodes
            held.update(ep.endpoint_id for ep in self.routes.endpoints() if ep.node_id in nodes)
        self.held = frozenset(held)


def split_deps(
    deps: tuple[tuple[int, Blob | Held], ...],
) -> tuple[tuple[tuple[int, Blob], ...], tuple[tuple[int, Held], ...]]:
    """A call's dependency results: those here, and those held on some member."""
    blobs: list[tuple[int, Blob]] = []
    held: list[tuple[int, Held]] = []
    for key, value in deps:
        if isinstance(value, Held):
            held.append((key, value))
        else:
            blobs.append((key, value))
    return tuple(blobs), tuple(held)


def holder_of(call: Call) -> str:
    """The member holding the biggest of ``call``'s held dependencies ("" if none)."""
    if not call.held:
        return ""
    return max(call.held, key=lambda item: item[1].nbytes)[1].node_id


def size_of(blob: Blob) -> int:
    """``blob.nbytes``, without a memoryview per part for the usual kinds: it is per call."""
    total = 0
    for part in blob.parts:  # bytes-like: one byte per item, but a memoryview's items may be more
        total += part.nbytes if isinstance(part, memoryview) else len(part)
    return total


def chain_bytes(chain: tuple[ChainStep, ...]) -> int:
    """The arguments of a fused chain's later steps: they travel in its call too."""
    return sum(size_of(step.args) for step in chain if step.args is not None)


def too_big(what: str, size: int) -> ErrorInfo:
    """A call whose arguments and dependency results together cannot travel in one frame."""
    return ErrorInfo(
        kind="serialization",
        message=f"its arguments and dependency results come to {size:,} bytes, "
        f"more than a frame holds ({max_value_bytes():,} bytes)",
        command=what,
    )


def unroutable(call: Call, datasets: frozenset[str], died: bool) -> ErrorInfo:
    """Nothing can run ``call``: its process died with no replica left, or none ever served it."""
    what = call.command or call.fun
    return ErrorInfo(
        kind="actor-died" if died else "no-route",
        message=(
            f"the process running {what!r} died and no replica is left"
            if died
            else f"no live process serves {call.fun!r} with datasets {sorted(datasets)}"
        ),
        command=call.command,
        fun=call.fun,
        datasets=tuple(sorted(datasets)),
    )


def never_served(call: Call, late: bool, waited: float) -> ErrorInfo:
    """A call that waited for a restarting replica in vain (``late``: until its deadline)."""
    what = call.command or call.fun
    if late:
        kind: ErrorKind = "deadline"
        message = f"no replica of {what!r} was serving by the deadline"
    else:
        kind = "actor-died"
        message = f"no replica of {what!r} was serving within {waited:g}s"
    return ErrorInfo(kind=kind, message=message, command=call.command, fun=call.fun)


def gave_up(call: Call, kind: ErrorKind, now: float) -> ErrorInfo:
    """The caller's answer for a call past its deadline (``kind="deadline"``) or cancelled."""
    what = call.command or call.fun
    if kind == "deadline":
        message = f"{what!r} passed its deadline ({now - call.deadline:.3f}s ago)"
    else:
        message = f"{what!r} was cancelled"
    return ErrorInfo(kind=kind, message=message, command=call.command, fun=call.fun)
