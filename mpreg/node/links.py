"""Which open link carries messages to each other node: one small table, no IO.

Who is a member, and whether it is alive, is the membership core's business
(:mod:`mpreg.membership`); this table only knows links. A link is whatever
carries messages to a peer (a :class:`~mpreg.transport.connection.Connection`
in the node, any hashable object in tests). Two nodes that dial each other at
the same moment end up with two links: both stay usable, the newest carries
what we send, and losing one of them loses nothing while the other is open.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Generic, TypeVar

L = TypeVar("L", bound=Hashable)


class LinkTable(Generic[L]):
    """The open links of this node to other nodes, and the addresses being dialled."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.own_address = ""
        self._links: dict[str, list[L]] = {}  # node id -> its open links, newest last
        self._node_of: dict[L, str] = {}  # link -> node id (the peer a message came from)
        self._dialling: set[str] = set()  # addresses with a dial in progress
        # Addresses that turned out to be this node itself (dialled under
        # another name): never dialled again.
        self.own_aliases: set[str] = set()

    def __len__(self) -> int:
        return len(self._links)

    def __repr__(self) -> str:
        return f"<LinkTable {self.node_id} nodes={len(self._links)} dialling={len(self._dialling)}>"

    # --- events ------------------------------------------------------------------

    def opened(self, node_id: str, link: L) -> None:
        """``link`` to ``node_id`` authenticated: it carries what we send from now on."""
        self._node_of[link] = node_id
        self._links.setdefault(node_id, []).append(link)

    def closed(self, link: L) -> str | None:
        """``link`` closed. Returns its node id if that node has no other open link."""
        node_id = self._node_of.pop(link, None)
        if node_id is None:
            return None
        links = self._links.get(node_id, [])
        if link in links:
            links.remove(link)
        if links:
            return None
        self._links.pop(node_id, None)
        return node_id

    def dialling(self, address: str) -> bool:
        """Claim ``address`` for one dial; False if it is already being dialled."""
        if address in self._dialling:
            return False
        self._dialling.add(address)
        return True

    def dialled(self, address: str) -> None:
        """The dial of ``address`` ended (connected or not)."""
        self._dialling.discard(address)

    # --- questions ---------------------------------------------------------------

    def link_for(self, node_id: str) -> L | None:
        """The newest open link to ``node_id``, or None."""
        links = self._links.get(node_id)
        return links[-1] if links else None

    def node_of(self, link: L) -> str | None:
        return self._node_of.get(link)

    def links_to(self, node_id: str) -> list[L]:
        return list(self._links.get(node_id, ()))

    def linked(self) -> list[str]:
        """Node ids we hold an open link to."""
        return list(self._links)

    def links(self) -> list[L]:
        """Every open link (to close them all)."""
        return list(self._node_of)

    def is_self(self, address: str) -> bool:
        return address == self.own_address or address in self.own_aliases
