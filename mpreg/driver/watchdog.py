"""Noticing that the driver's node hangs: silence while the client waits for it.

A node that dies closes its connections and the link fails over at once. One
that hangs (stopped, its host cut off without a TCP reset) keeps them open and
says nothing, so the link watches for that: while the client waits for the
node (a request, a future, a status or deploy question, a sync request on the
sync path's own connection) and nothing has come from it for ``HEARTBEAT``
seconds, it sends a probe the node answers at once from its own loop; if
nothing at all arrives for ``SILENCE`` seconds, the node must still take a new
connection within ``CONFIRM_TIMEOUT``, or the link gives it up and fails over.

That last check is for a node that is alive but has stopped reading from this
client, because the client gave it as much work as it queues for one client
(``mpreg.node.pressure``): the probe then waits unread behind that work, and
with long calls nothing comes back for a while, but the node's loop still
completes a handshake. A hung node's loop cannot.

An idle client expects nothing and sends nothing. The hot path pays one
integer increment per chunk received (``Connection.received``); once per
``TICK`` the link hands that count to :class:`Silence`, which says what to do.
"""

from __future__ import annotations

from enum import Enum
from typing import Protocol

# Why these values: a node's loop stops for its garbage collector, and pauses
# of ~0.7 s were measured in a node with 50,000 queued calls, so a node silent
# for 2 s is only asked, and one is suspected only after 5 s without a byte,
# the probe's answer included. Failing over sooner would gain little: the
# other members declare a hung node dead within ~5 s (mpreg.membership), and
# until then the member the driver moves to may still route calls to the hung
# node's replicas.
TICK = 1.0  # how often the link looks (a timer, not a timestamp per message)
HEARTBEAT = 2.0  # silent this long while the client waits: probe
SILENCE = 5.0  # silent this long, the probe unanswered: does it take a new connection?
CONFIRM_TIMEOUT = 2.0  # ... within this (one failover dial gets as long)
# The probe's request id: the client's own questions count from 1, so its
# Reply is dropped as unknown (PendingReplies); any frame that arrives counts.
PROBE_ID = 0


class Verdict(Enum):
    WAIT = "wait"
    PROBE = "probe"  # silent for HEARTBEAT: send the probe
    CONFIRM = "confirm"  # silent for SILENCE: give the node up unless it takes a connection


class SideConnection(Protocol):
    """Another connection to the link's node (the sync path's), whose calls the link watches too."""

    def busy(self) -> bool:
        """True while a call waits for the node on it (read from the link's loop thread)."""
        ...

    def interrupt(self, generation: int) -> None:
        """The link gave up its node of ``generation``: a caller blocked on it must move on."""
        ...


class Silence:
    """How long the node has said nothing while the client waited for it.

    Sans-IO: the link passes the time, the connection's count of chunks
    received and whether the client waits; :meth:`tick` answers what to do.
    """

    def __init__(self, heartbeat: float = HEARTBEAT, silence: float = SILENCE) -> None:
        self.heartbeat = heartbeat
        self.silence = silence
        self._seen = 0  # the count of chunks received at the last sign of life
        self._since = 0.0  # when that was, or when the client began to wait
        self._probed = False  # a probe went out in this silence

    def __repr__(self) -> str:
        return f"<Silence since={self._since:.1f} probed={self._probed}>"

    def heard(self, now: float, received: int) -> None:
        """A sign of life at ``now`` (or a new connection): the silence starts over."""
        self._seen = received
        self._since = now
        self._probed = False

    def quiet(self, now: float) -> float:
        """Seconds of silence at ``now``."""
        return now - self._since

    def tick(self, now: float, received: int, busy: bool) -> Verdict:
        """One look at ``now``: ``received`` chunks so far, ``busy`` if the client waits."""
        if not busy or received != self._seen:
            # Silence while nothing is expected is no sign: it counts from the first wait.
            self.heard(now, received)
            return Verdict.WAIT
        quiet = now - self._since
        if quiet >= self.silence:
            return Verdict.CONFIRM
        if quiet >= self.heartbeat and not self._probed:
            self._probed = True
            return Verdict.PROBE
        return Verdict.WAIT
