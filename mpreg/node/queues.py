"""Calls waiting on their node for a free slot on an endpoint that can run them.

The dispatcher keeps at most a few calls outstanding per endpoint; the rest
wait here, one FIFO per (function, datasets), in arrival order. A freed slot
takes the oldest waiting call its endpoint can serve.

A call that stops waiting (cancelled, or past its deadline) is not searched
for: its owner marks it and drops its payload, and the queue skips it when
reached. So that a stuck endpoint cannot make those marks pile up, the queues
are compacted once most of what they hold is dead. Pure: no IO, no clock.
"""

from __future__ import annotations

from collections import deque
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


class CallQueues(Generic[W]):
    """FIFOs of waiting calls per (function, datasets); ``live`` counts the waiting ones."""

    def __init__(self) -> None:
        self._queues: dict[QueueKey, deque[W]] = {}
        self.live = 0
        self._dead = 0  # entries that stopped waiting but are still held

    def __len__(self) -> int:
        return self.live

    def __repr__(self) -> str:
        return f"<CallQueues queues={len(self._queues)} live={self.live} dead={self._dead}>"

    def push(self, key: QueueKey, record: W, *, front: bool = False) -> None:
        """Queue ``record``; ``front``: it goes first (a retry that already waited its turn)."""
        queue = self._queues.get(key)
        if queue is None:
            queue = self._queues[key] = deque()
        if front:
            queue.appendleft(record)
        else:
            queue.append(record)
        self.live += 1

    def stopped_waiting(self) -> None:
        """One queued record was cancelled or expired (its owner marked it)."""
        self.live -= 1
        self._dead += 1
        if self._dead >= _COMPACT_MIN_DEAD and self._dead > self.live:
            self._compact()

    def pop_for(self, endpoint: Endpoint) -> W | None:
        """The oldest waiting record ``endpoint`` can serve, taken off its queue."""
        best: deque[W] | None = None
        best_key: QueueKey = ("", frozenset())
        for key in list(self._queues):
            fun, datasets = key
            if fun not in endpoint.functions or not datasets <= endpoint.datasets:
                continue
            queue = self._skip_dead(key)
            if queue is not None and (best is None or queue[0].seq < best[0].seq):
                best, best_key = queue, key
        if best is None:
            return None
        record = best.popleft()
        self.live -= 1
        if not best:
            del self._queues[best_key]
        return record

    def waiting_for(self) -> list[QueueKey]:
        """The (function, datasets) pairs calls wait for."""
        return list(self._queues)

    def take_all(self, key: QueueKey) -> list[W]:
        """Every waiting record of one queue, in order; the queue is gone."""
        queue = self._queues.pop(key, deque())
        waiting = [record for record in queue if record.waiting]
        self._dead -= len(queue) - len(waiting)
        self.live -= len(waiting)
        return waiting

    def _skip_dead(self, key: QueueKey) -> deque[W] | None:
        queue = self._queues[key]
        while queue and not queue[0].waiting:
            queue.popleft()
            self._dead -= 1
        if not queue:
            del self._queues[key]
            return None
        return queue

    def _compact(self) -> None:
        for key, queue in list(self._queues.items()):
            kept = deque(record for record in queue if record.waiting)
            if kept:
                self._queues[key] = kept
            else:
                del self._queues[key]
        self._dead = 0
