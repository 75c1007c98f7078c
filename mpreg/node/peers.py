"""Who this node's peers are: one :class:`Peer` record per link, in one table.

The table is the one place that knows peers; the rest of the node asks it
(``link_for(node_id)``, ``known_addresses()``, ``alive()``). It does no IO:
the asyncio side (dialling, sending hellos, closing) lives in
:mod:`mpreg.node.peering`. A link is whatever carries messages to a peer (a
:class:`~mpreg.transport.connection.Connection` in the node, any hashable
object in tests), so a sans-IO membership state machine can later take the
table's place behind the same questions.
"""

from __future__ import annotations

import asyncio
from collections.abc import Hashable
from dataclasses import dataclass
from enum import Enum
from typing import Generic, TypeVar

from mpreg.protocol.messages import NodeInfo

L = TypeVar("L", bound=Hashable)


class PeerState(Enum):
    JOINING = "joining"  # dialled or accepted; its hello has not arrived yet
    ALIVE = "alive"  # hellos exchanged: calls route to it
    GONE = "gone"  # its link closed; its endpoints were dropped


@dataclass(eq=False)
class Peer(Generic[L]):
    """One link to another node, from the moment we dial it (or it dials us) until it closes."""

    dialled: bool  # we opened the link (and our join awaits its hello)
    address: str = ""  # the address we dialled; "" for a link a peer opened to us
    link: L | None = None  # None while the dial is still connecting
    state: PeerState = PeerState.JOINING
    info: NodeInfo | None = None  # from its hello
    joined: asyncio.Future[None] | None = None  # resolved by its hello: our join is done

    def __repr__(self) -> str:
        who = self.info.name if self.info else (self.address or "?")
        where = self.info.address if self.info else self.address
        return f"<Peer {who} {where} {self.state.name}>"

    @property
    def node_id(self) -> str:
        return self.info.node_id if self.info else ""


class PeerTable(Generic[L]):
    """Every peer link of the node ``node_id``, and which one is current for each node."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.own_address = ""
        self._peers: set[Peer[L]] = set()
        self._by_link: dict[L, Peer[L]] = {}  # index: the peer a message came from
        self._alive: dict[str, Peer[L]] = {}  # index: node id -> its current link
        # Addresses that turned out to be this node itself (dialled under
        # another name): never dialled again.
        self._own_aliases: set[str] = set()

    def __len__(self) -> int:
        return len(self._alive)

    def __repr__(self) -> str:
        return f"<PeerTable {self.node_id} alive={len(self._alive)} links={len(self._peers)}>"

    # --- events -----------------------------------------------------------------

    def dialling(self, address: str) -> Peer[L]:
        """We are about to dial ``address``: it counts as known from now on."""
        peer: Peer[L] = Peer(dialled=True, address=address)
        self._peers.add(peer)
        return peer

    def connected(self, peer: Peer[L], link: L, joined: asyncio.Future[None] | None) -> None:
        """Our dial to ``peer`` connected over ``link``; ``joined`` waits for its hello."""
        peer.link = link
        peer.joined = joined
        self._by_link[link] = peer

    def accepted(self, link: L) -> Peer[L]:
        """Another node dialled us over ``link``; its hello will say who it is."""
        peer: Peer[L] = Peer(dialled=False, link=link)
        self._peers.add(peer)
        self._by_link[link] = peer
        return peer

    def hello(self, link: L, info: NodeInfo) -> Peer[L] | None:
        """The node behind ``link`` introduced itself: it is ALIVE and current for its id.

        Returns None if the hello is this node's own (we dialled ourselves
        under another address): the caller closes that link.
        """
        peer = self._by_link.get(link) or self.accepted(link)
        if info.node_id == self.node_id:
            if peer.address:
                self._own_aliases.add(peer.address)
            return None
        peer.info = info
        peer.state = PeerState.ALIVE
        self._alive[info.node_id] = peer  # a newer link to the same node replaces the old
        return peer

    def closed(self, link: L) -> Peer[L] | None:
        """``link`` closed. Returns its peer if it was the current link of an ALIVE node.

        Then that node is gone and its endpoints must go; an older duplicate
        link, or one that never said hello, leaves routing as it is.
        """
        peer = self._by_link.pop(link, None)
        if peer is None:
            return None
        self._peers.discard(peer)
        current = peer.info is not None and self._alive.get(peer.info.node_id) is peer
        peer.state = PeerState.GONE
        if not current:
            return None
        del self._alive[peer.node_id]
        return peer

    def forget(self, peer: Peer[L]) -> None:
        """A dial that never connected: its address is unknown again."""
        if peer.link is not None:
            self._by_link.pop(peer.link, None)
        self._peers.discard(peer)
        peer.state = PeerState.GONE

    # --- questions ----------------------------------------------------------------

    def get(self, link: L) -> Peer[L] | None:
        return self._by_link.get(link)

    def link_for(self, node_id: str) -> L | None:
        """The current link to an ALIVE node, or None."""
        peer = self._alive.get(node_id)
        return peer.link if peer is not None else None

    def alive(self) -> list[Peer[L]]:
        """The current peer of each node we route to."""
        return list(self._alive.values())

    def links(self) -> list[L]:
        """Every open or opening link (to close them all)."""
        return list(self._by_link)

    def alive_addresses(self) -> tuple[str, ...]:
        """What our hello tells a new peer to join too."""
        return tuple(p.info.address for p in self._alive.values() if p.info is not None)

    def known_addresses(self) -> set[str]:
        """This node's, its aliases, and every peer's dialled or advertised address."""
        known = {self.own_address, *self._own_aliases}
        for peer in self._peers:
            if peer.address:
                known.add(peer.address)
            if peer.info is not None:
                known.add(peer.info.address)
        known.discard("")
        return known

    def knows(self, address: str) -> bool:
        """True if ``address`` is this node, a peer, or being dialled: do not dial it again."""
        return address in self.known_addresses()
