"""Calls waiting on their node until an endpoint that can run them may take them.

The dispatcher keeps at most a few calls outstanding per endpoint, and sends
nothing new to a held endpoint (its link lags); the rest wait here, one FIFO
per (function, datasets), in arrival order. A freed slot takes the oldest
waiting call its endpoint can serve. A call a peer pinned to one endpoint
(it chose the replica) waits in that endpoint's own FIFO: no other may take it.

A call that stops waiting (cancelled, or past its deadline) is not searched
for: its owner marks it and drops its payload, and the queue skips it when
reached. So that a stuck endpoint cannot make those marks pile up, the queues
are compacted once most of what they hold is dead. Pure: no IO, no clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from typing import Generic, Protocol, TypeVar

from mpreg.protocol.messages import Endpoint

QueueKey = tuple[str, frozenset[str]]  # (function, datasets)

_COMPACT_MIN_DEAD = 1024  # below this, dead entries cost less than a sweep


class Waiting(Protocol):
    """What the queues read of a call: is it still waiting, and its arrival order."""

    @property
    def waiting(self) -> bool: ...

    @property
    def seq(self) -> int: ...


W = TypeVar("W", bound=Waiting)
K = TypeVar("K", bound=Hashable)


class CallQueues(Generic[W]):
    """FIFOs of waiting calls per (function, datasets) and per pinned endpoint.

    ``live`` counts the calls still waiting.
    """

    def __init__(self) -> None:
        self._queues: dict[QueueKey, deque[W]] = {}
        self._pinned: dict[str, deque[W]] = {}  # endpoint_id -> calls only it may take
        self.live = 0
        self._dead = 0  # entries that stopped waiting but are still held

    def __len__(self) -> int:
        return self.live

    def __repr__(self) -> str:
        return (
            f"<CallQueues queues={len(self._queues)} pinned={len(self._pinned)} "
            f"live={self.live} dead={self._dead}>"
        )

    def push(self, key: QueueKey, record: W, *, front: bool = False) -> None:
        """Queue ``record``; ``front``: it goes first (a retry that already waited its turn)."""
        _append(self._queues, key, record, front)
        self.live += 1

    def push_pinned(self, endpoint_id: str, record: W) -> None:
        """Queue ``record`` for ``endpoint_id`` alone."""
        _append(self._pinned, endpoint_id, record, False)
        self.live += 1

    def stopped_waiting(self) -> None:
        """One queued record was cancelled or expired (its owner marked it)."""
        self.live -= 1
        self._dead += 1
        if self._dead >= _COMPACT_MIN_DEAD and self._dead > self.live:
            self._compact()

    def pop_for(self, endpoint: Endpoint) -> W | None:
        """The oldest waiting record ``endpoint`` can serve, taken off its queue."""
        best: deque[W] | None = self._head(self._pinned, endpoint.endpoint_id)
        best_key: QueueKey | None = None  # None: best is the pinned FIFO
        for key in list(self._queues):
            fun, datasets = key
            if fun not in endpoint.functions or not datasets <= endpoint.datasets:
                continue
            queue = self._head(self._queues, key)
            if queue is not None and (best is None or queue[0].seq < best[0].seq):
                best, best_key = queue, key
        if best is None:
            return None
        record = best.popleft()
        self.live -= 1
        if not best:
            if best_key is None:
                del self._pinned[endpoint.endpoint_id]
            else:
                del self._queues[best_key]
        return record

    def waiting_count(self, endpoint: Endpoint) -> int:
        """Calls waiting that ``endpoint`` could take (a status figure: it walks the queues).

        A call more than one replica could take counts in each one's figure.
        """
        count = sum(r.waiting for r in self._pinned.get(endpoint.endpoint_id, ()))
        for (fun, datasets), queue in self._queues.items():
            if fun in endpoint.functions and datasets <= endpoint.datasets:
                count += sum(r.waiting for r in queue)
        return count

    def waiting_for(self) -> list[QueueKey]:
        """The (function, datasets) pairs calls wait for (pinned calls aside)."""
        return list(self._queues)

    def take_all(self, key: QueueKey) -> list[W]:
        """Every waiting record of one queue, in order; the queue is gone."""
        return self._take(self._queues.pop(key, deque()))

    def take_pinned(self, endpoint_id: str) -> list[W]:
        """Every waiting record pinned to ``endpoint_id``, in order; its queue is gone."""
        return self._take(self._pinned.pop(endpoint_id, deque()))

    def _take(self, queue: deque[W]) -> list[W]:
        waiting = [record for record in queue if record.waiting]
        self._dead -= len(queue) - len(waiting)
        self.live -= len(waiting)
        return waiting

    def _head(self, queues: dict[K, deque[W]], key: K) -> deque[W] | None:
        """``queues[key]`` with its dead head entries dropped; None (and gone) if empty."""
        queue = queues.get(key)
        if queue is None:
            return None
        while queue and not queue[0].waiting:
            queue.popleft()
            self._dead -= 1
        if not queue:
            del queues[key]
            return None
        return queue

    def _compact(self) -> None:
        _compact(self._queues)
        _compact(self._pinned)
        self._dead = 0


def _append(queues: dict[K, deque[W]], key: K, record: W, front: bool) -> None:
    queue = queues.get(key)
    if queue is None:
        queue = queues[key] = deque()
    if front:
        queue.appendleft(record)
    else:
        queue.append(record)


def _compact(queues: dict[K, deque[W]]) -> None:
    for key, queue in list(queues.items()):
        kept = deque(record for record in queue if record.waiting)
        if kept:
            queues[key] = kept
        else:
            del queues[key]
