"""The wire messages of streams: a generator's items travel one by one, under credit.

A stream is one call whose answer comes in pieces. The client opens it with
:class:`StreamStart` (a task and its first window of credit); every hop
towards the producer (node, peer node, worker) learns of it from a
:class:`StreamCredit` with ``opens=True`` sent on the same link just before
the call itself; the producer sends one :class:`StreamItem` per item and never
more than the credit it was given; the consumer tops the credit up with
:class:`StreamCredit` as it takes items. The stream ends as its call does
(``CallDone`` from the worker, ``ForwardDone`` between nodes) and, to the
client, with :class:`StreamEnd`. Ids on each hop are that hop's own: the
client's stream id, then the call id each sender gave the call.
docs/design.md ("Streams") draws the whole exchange.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpreg.protocol.codec import Blob
from mpreg.protocol.failures import ErrorInfo
from mpreg.protocol.messages import TaskSpec
from mpreg.protocol.schema import message


@message(34)
@dataclass(frozen=True, slots=True)
class StreamStart:
    """Client -> node: run ``task`` as a stream; ``window`` items may come before any top-up."""

    stream_id: int
    task: TaskSpec
    window: int


@message(35)
@dataclass(frozen=True, slots=True)
class StreamItem:
    """One item of stream ``call_id`` (the receiver's id for it), towards the consumer."""

    call_id: int
    value: Blob


@message(36)
@dataclass(frozen=True, slots=True)
class StreamCredit:
    """Towards the producer: ``items`` more may be sent on stream ``call_id``.

    ``opens``: the call with this id, sent next on this link, is a stream and
    this is its whole credit so far (a call without one is an ordinary call).
    """

    call_id: int
    items: int
    opens: bool = False


@message(37)
@dataclass(frozen=True, slots=True)
class StreamEnd:
    """Node -> client: stream ``stream_id`` ended; ``error`` None: every item was sent."""

    stream_id: int
    error: ErrorInfo | None = None
    where: str = ""  # endpoint id that ran it
