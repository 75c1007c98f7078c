"""Direct lanes: a driver's calls straight to a worker process of its node, and back.

The node stays the control plane: it starts and supervises the processes,
keeps the routing table, and tells a client which of its own processes may
take a call directly (:class:`LaneQuery`, answered with a :class:`LaneRoute`
in a ``Reply``). Each worker listens on a port of its own (its *lane*) and
admits a connection that proves the lane's ``ticket``: a secret its node made
for that process and gives only to clients it admitted with the full token.
On a lane the driver sends ``Call`` and ``CancelCall`` and the worker answers
``CallDone``, as it answers its node: two process hops per call instead of four.

A future's call on a lane names the driver's session and task
(``Call.session``, ``Call.task_id``): a result of ``HOLD_FROM_BYTES`` or more
then goes to the worker's node (:class:`Kept`), which holds it for that
session as it holds any future's result, and the lane answers
``CallDone(call_id, None, None)``: "your node will tell you". Registered here,
imported by :mod:`mpreg.protocol.messages` so every process knows them.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpreg.protocol.blob import Blob
from mpreg.protocol.codec import fast_pickle
from mpreg.protocol.schema import message


@message(43)
@dataclass(frozen=True, slots=True)
class LaneQuery:
    """Client -> node: which of your processes may take ``fun`` on ``datasets`` directly?

    Answered by ``Reply(request_id, LaneRoute)``.
    """

    request_id: int
    fun: str
    datasets: frozenset[str]


@fast_pickle
@dataclass(frozen=True, slots=True)
class Lane:
    """One worker process a client may call directly. Not a message."""

    endpoint_id: str
    address: str  # host:port of the worker's lane listener
    ticket: str  # the secret its lane handshake proves


@fast_pickle
@dataclass(frozen=True, slots=True)
class LaneRoute:
    """The node's answer to a :class:`LaneQuery`. Not a message.

    ``lanes`` is empty when the call must go through the node: a replica that
    can take it lives on another member (the node balances between them), or
    one has no lane. ``session`` names the client's session on the node, for
    :class:`Kept`.
    """

    session: str
    lanes: tuple[Lane, ...]


@message(44)
@dataclass(frozen=True, slots=True)
class Kept:
    """Worker -> its node: the result of a lane call of a future, to hold for its session.

    The node holds it as the result of task ``task_id`` of session ``session``
    (or drops it, if that session has ended) and tells the client with a
    ``TaskDone`` as for any future's result. ``where`` is the worker's endpoint id.
    """

    session: str
    task_id: int
    result: Blob
    where: str


@message(45)
@dataclass(frozen=True, slots=True)
class LaneCounts:
    """Worker -> its node: calls its lanes answered since the last report (for metrics).

    ``calls`` answered, ``errors`` among them, and ``busy`` seconds spent
    running them; sent at most once a second, and only when there was any.
    """

    endpoint_id: str
    calls: int
    errors: int
    busy: float
