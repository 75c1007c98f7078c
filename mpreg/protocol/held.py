"""Messages about values held in the cluster: stored once (``Put``), fetched on demand.

A submitted call's result stays in the cluster until the driver asks for it
(``Fetch``; the answer is an ordinary ``TaskDone`` carrying the value). ``Put``
stores a driver's value on its node under a task id of the client's session,
so any later call can use it as an argument.

Between nodes: a big result made on one member for another member's session
stays where it was made (:class:`Held` says where); the member that runs a
call needing it fetches it from there (``HeldFetch``/``HeldValue``), and the
session's node frees it when nobody needs it any more (``HeldFree``). So a
value moves from the node that made it straight to the node that uses it.
Registered here, imported by :mod:`mpreg.protocol.messages` so every process
knows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpreg.protocol.blob import Blob
from mpreg.protocol.codec import fast_pickle
from mpreg.protocol.schema import message

# A future's result at least this big stays in the cluster until the driver asks
# for it; a smaller one travels with its TaskDone at once (one round trip less,
# as Ray inlines small objects). The node's store and a worker's lanes
# (mpreg.protocol.lanes) both hold from here.
HOLD_FROM_BYTES = 64 * 1024


@fast_pickle
@dataclass(frozen=True, slots=True)
class Held:
    """A value held by member ``node_id`` under ``key``: ``nbytes`` big. Not a message."""

    node_id: str
    key: int
    nbytes: int


@message(38)
@dataclass(frozen=True, slots=True)
class Put:
    """Client -> node: hold ``value`` as the result of task ``task_id`` until released.

    Answered with a ``TaskDone`` whose ``held`` is the value's size, or with
    the error that kept it from being stored (the store is full).
    """

    task_id: int
    value: Blob


@message(39)
@dataclass(frozen=True, slots=True)
class Fetch:
    """Client -> node: send the held results of these tasks (each as a ``TaskDone``)."""

    task_ids: tuple[int, ...]


@message(40)
@dataclass(frozen=True, slots=True)
class HeldFetch:
    """Node -> node: send me the value you hold under ``key`` (answered by ``HeldValue``)."""

    request_id: int
    key: int


@message(41)
@dataclass(frozen=True, slots=True)
class HeldValue:
    """Node -> node: the value asked for, or why there is none (``missing``)."""

    request_id: int
    value: Blob | None
    missing: str = ""


@message(42)
@dataclass(frozen=True, slots=True)
class HeldFree:
    """Node -> node: nobody needs these values you hold for me any more."""

    keys: tuple[int, ...]
