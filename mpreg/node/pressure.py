"""Backpressure on one node: the one place that pauses and resumes reading from clients.

Two signals, both from a connection's write buffer passing its high or low
water mark (``Connection.on_pressure``):

- a worker or peer link is not keeping up (``link_pressure``): stop taking new
  work from every client until all such links drain. Memory stays bounded
  under overload: the kernel's socket buffers then push back on the clients,
  whose ``drain()`` waits.
- one client is not reading its results (``client_pressure``): stop taking
  work from that client alone.

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

    def __repr__(self) -> str:
        return (
            f"<Backpressure clients={len(self._clients)} "
            f"congested={len(self._congested)} slow={len(self._slow)}>"
        )

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

    def client_pressure(self, conn: Pausable, congested: bool) -> None:
        """``conn`` (a client) stopped, or started again, reading its results."""
        if congested:
            self._slow.add(conn)
            conn.pause_reading()
        else:
            self._slow.discard(conn)
            if not self._congested:  # a node-wide pause outlasts the client's own
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
            elif client not in self._slow:
                client.resume_reading()

    def link_closed(self, conn: Hashable) -> None:
        """A closed link no longer holds anyone back."""
        self.link_pressure(conn, False)
