"""Backpressure on one node: the one place that pauses and resumes reading from clients.

Three signals. Two come from a connection's write buffer passing its high or
low water mark (``Connection.on_pressure``):

- a worker or peer link is not keeping up (``link_pressure``): stop taking new
  work from every client until all such links drain. Memory stays bounded
  under overload: the kernel's socket buffers then push back on the clients,
  whose ``drain()`` waits.
- one client is not reading its results (``client_pressure``): stop taking
  work from that client alone.

The third from the client's session: it has more unfinished work queued on
the node than its bound (``client_busy``, ``Session.max_queued``): stop taking
work from that client alone until it drains below the low-water mark.

A client resumes only when neither holds it. No IO and no clock here: the
node hands in the connections and their signals.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Protocol


class Pausable(Hashable, Protocol):
    """A connection whose reading can be paused (``Connection`` in the node)."""

    def pause_reading(self) -> None: ...

    def resume_reading(self) -> None: ...


class Backpressure:
    """The congested links, the slow clients, and the clients to pause or resume."""

    def __init__(self) -> None:
        self._clients: set[Pausable] = set()
        self._congested: set[Hashable] = set()  # workers and peers not keeping up
        self._slow: set[Pausable] = set()  # clients not reading their results
        self._busy: set[Pausable] = set()  # clients with too much work queued

    def __repr__(self) -> str:
        return (
            f"<Backpressure clients={len(self._clients)} congested={len(self._congested)} "
            f"slow={len(self._slow)} busy={len(self._busy)}>"
        )

    def _held_alone(self, conn: Pausable) -> bool:
        """Whether one of ``conn``'s own causes keeps it paused."""
        return conn in self._slow or conn in self._busy

    @property
    def congested(self) -> bool:
        """True while some worker or peer link is not keeping up."""
        return bool(self._congested)

    def add_client(self, conn: Pausable) -> None:
        """A new client: it starts paused if the node is congested right now."""
        self._clients.add(conn)
        if self._congested:
            conn.pause_reading()

    def drop_client(self, conn: Pausable) -> None:
        self._clients.discard(conn)
        self._slow.discard(conn)
        self._busy.discard(conn)

    def client_pressure(self, conn: Pausable, congested: bool) -> None:
        """``conn`` (a client) stopped, or started again, reading its results."""
        self._hold(self._slow, conn, congested)

    def client_busy(self, conn: Pausable, busy: bool) -> None:
        """``conn`` (a client) has more work queued than its bound, or drained below it."""
        self._hold(self._busy, conn, busy)

    def _hold(self, cause: set[Pausable], conn: Pausable, held: bool) -> None:
        if held:
            cause.add(conn)
            conn.pause_reading()
            return
        cause.discard(conn)
        # A node-wide pause, or the client's other cause, outlasts this one.
        if not self._congested and not self._held_alone(conn):
            conn.resume_reading()

    def link_pressure(self, conn: Hashable, congested: bool) -> None:
        """A worker or peer link is not keeping up (or caught up): pause or resume clients."""
        was = bool(self._congested)
        if congested:
            self._congested.add(conn)
        else:
            self._congested.discard(conn)
        if was == bool(self._congested):
            return
        for client in self._clients:
            if self._congested:
                client.pause_reading()
            elif not self._held_alone(client):
                client.resume_reading()

    def link_closed(self, conn: Hashable) -> None:
        """A closed link no longer holds anyone back."""
        self.link_pressure(conn, False)
