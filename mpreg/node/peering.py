"""Talking to the other members: links, membership gossip, advertisements.

Who the members are, and whether they live, is decided by the sans-IO SWIM
core (:class:`mpreg.membership.Swim`); this is its asyncio side. The node hands
it every gossip message, every link that opens or closes, and a tick every
``tick_interval``; it carries out what the core answers: send a message over
a link, dial a member it has no link to, route to a member's endpoints or
stop, take a dead member's endpoints out and move its calls.

Joining is one exchange: a link to a member opens (dialled or accepted, both
authenticated), each side sends the other its full view (``Sync``), and the
join is done when the member's view arrives. Every member it names is dialled
too, so the cluster stays a full mesh of links; gossip repairs it when links
break. A node's endpoints travel as its versioned :class:`Advert`, with a
coarse load figure per endpoint refreshed every few seconds. The calls that
cross the links are :mod:`mpreg.node.forwarding`'s.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from ssl import SSLContext
from typing import Literal

from mpreg.errors import ClusterUnavailable
from mpreg.membership import (
    AdvertChanged,
    Instruction,
    Member,
    MemberChanged,
    MemberInfo,
    MemberState,
    Send,
    Swim,
    SwimConfig,
    Sync,
)
from mpreg.node.adverts import Advert, apply_advert, load_moved, own_advert, well_formed
from mpreg.node.dispatch import CallDispatcher
from mpreg.node.links import LinkTable
from mpreg.node.routing import RoutingTable
from mpreg.protocol.frames import DEFAULT_MAX_FRAME
from mpreg.protocol.handshake import Handshake
from mpreg.protocol.messages import Gossip
from mpreg.tasks import TaskSet
from mpreg.transport.connection import (
    STALL_TIMEOUT,
    Connection,
    ConnState,
    parse_address,
)
from mpreg.transport.dial import connect

log = logging.getLogger(__name__)

JOIN_TIMEOUT = 10.0
# How often links to members we should hold but do not are dialled again
# (and the dead, which may only have paused, are tried once more).
REPAIR_INTERVAL = 2.0
# How often our endpoints' load figures are looked at, and gossiped (piggybacked
# only, never pushed) if they moved: a coarse balancing hint, not a counter.
LOAD_INTERVAL = 2.0

MessageHandler = Callable[[Connection, object], None]
CloseHandler = Callable[[Connection, BaseException | None], None]


class Peering:
    """The links of one node to the other members, and the membership core they feed."""

    def __init__(
        self,
        *,
        node_id: str,
        handshake: Callable[[Literal["connector", "acceptor"]], Handshake],
        routes: RoutingTable,
        calls: CallDispatcher,
        tasks: TaskSet,
        on_message: MessageHandler,
        on_close: CloseHandler,
        on_members_changed: Callable[[], None] = lambda: None,
        on_link: Callable[[Connection], None] = lambda conn: None,
        config: SwimConfig | None = None,
        max_frame: int = DEFAULT_MAX_FRAME,
        stall_timeout: float = STALL_TIMEOUT,
    ) -> None:
        self.node_id = node_id
        self._frame_limits = (max_frame, stall_timeout)  # for the links this node dials
        self._handshake = handshake
        self.routes = routes
        self.calls = calls
        self._tasks = tasks
        self._on_message = on_message
        self._on_close = on_close
        self._on_members_changed = on_members_changed
        self._on_link = on_link  # a new peer link (dialled or accepted) authenticated
        self._config = config or SwimConfig()
        self.links: LinkTable[Connection] = LinkTable(node_id)
        self.swim: Swim | None = None  # made by start(), once the node's address is known
        self.ssl: SSLContext | None = None  # TLS for the links this node dials (node.start sets it)
        self._joining: dict[str, asyncio.Future[None]] = {}  # node id -> its view arrived
        # Addresses we were asked to join: dialled again if every other member is lost.
        self._seeds: list[str] = []
        self._next_repair = 0.0
        self._next_load = 0.0
        self._advertised = Advert()  # our advert as last gossiped
        self._ticker: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        members = len(self.swim.members()) if self.swim else 0
        return f"<Peering {self.node_id} members={members} {self.links!r}>"

    # --- lifecycle --------------------------------------------------------------------

    def start(self, me: MemberInfo) -> None:
        """Become a member (of a cluster of one until a join) and start ticking."""
        self.links.own_address = me.address
        self.swim = Swim(me, config=self._config, now=time.monotonic())
        self.advertise()
        self._ticker = self._tasks.spawn(self._tick_forever())

    def leave(self) -> None:
        """Tell the members we leave for good (they drop our endpoints at once)."""
        if self.swim is not None:
            self._run(self.swim.leave(time.monotonic()))

    def close_all(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        for conn in self.links.links():
            conn.close()

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self._config.tick_interval)
            now = time.monotonic()
            assert self.swim is not None
            self._run(self.swim.tick(now))
            if now >= self._next_repair:
                self._next_repair = now + REPAIR_INTERVAL
                self._repair()
            if now >= self._next_load:
                self._next_load = now + LOAD_INTERVAL
                self._refresh_load(now)

    # --- joining ----------------------------------------------------------------------

    async def join(self, address: str) -> None:
        """Connect to a member and exchange views; raises ClusterUnavailable."""
        if address not in self._seeds:
            self._seeds.append(address)
        if not self.links.dialling(address):
            return  # already being dialled (a join of the same seed twice)
        try:
            conn = await self._dial(address)
        finally:
            self.links.dialled(address)
        if conn is None:
            return  # the address was this node itself
        node_id = self.links.node_of(conn)
        joined = self._joining.get(node_id or "")
        if joined is None:
            return  # its view already came (or the link already closed)
        try:
            # Both sides send their view when the link opens: once the
            # member's view is here, we know the cluster and it knows us.
            async with asyncio.timeout(JOIN_TIMEOUT):
                await asyncio.wait([joined, conn.closed], return_when=asyncio.FIRST_COMPLETED)
        except TimeoutError:
            conn.close()
            raise ClusterUnavailable(f"node {address} did not answer the join") from None
        finally:
            self._joining.pop(node_id or "", None)
        if not joined.done():
            raise ClusterUnavailable(f"node {address} closed the connection during the join")

    async def _dial(self, address: str) -> Connection | None:
        host, port = parse_address(address)
        conn = await connect(
            host,
            port,
            self._handshake("connector"),
            on_message=self._on_message,
            on_close=self._on_close,
            timeout=JOIN_TIMEOUT,
            ssl=self.ssl,
            max_frame=self._frame_limits[0],
            stall_timeout=self._frame_limits[1],
        )
        identity = conn.peer
        if identity is not None and identity.meta.get("node_id") == self.node_id:
            self.links.own_aliases.add(address)  # we dialled ourselves under another name
            conn.close()
            return None
        return conn if self.opened(conn, dialled_as=address) else None

    def _dial_quietly(self, address: str) -> None:
        if self.links.is_self(address) or not self.links.dialling(address):
            return

        async def dial() -> None:
            try:
                await self._dial(address)
            except Exception as exc:  # ClusterUnavailable, AuthenticationError, ...
                log.debug("could not reach member %s: %s", address, exc)
            finally:
                self.links.dialled(address)

        self._tasks.spawn(dial())

    def opened(self, conn: Connection, *, dialled_as: str = "") -> bool:
        """An authenticated link to another node: register it and send our view.

        Returns False (and closes it) if the node at the other end is this one.
        """
        if self.links.node_of(conn) is not None:
            return True  # its first gossip arrived before the dial returned
        identity = conn.peer
        assert identity is not None and self.swim is not None
        node_id = str(identity.meta.get("node_id", ""))
        address = str(identity.meta.get("address", "")) or dialled_as
        if node_id == self.node_id or not node_id:
            conn.close()
            return False
        self.links.opened(node_id, conn)
        self._on_link(conn)
        self._joining.setdefault(node_id, asyncio.get_running_loop().create_future())
        info = MemberInfo(node_id, identity.name, address)
        self._run(self.swim.linked(info, time.monotonic()))
        self._update_reachable(node_id)
        return True

    def _repair(self) -> None:
        """Dial members we have no link to; try the dead once more; rejoin through a seed."""
        assert self.swim is not None
        linked = set(self.links.linked())
        members = [m for m in self.swim.members() if m.info.node_id != self.node_id]
        for member in members:
            if member.info.node_id in linked or member.state is MemberState.LEFT:
                continue
            self._dial_quietly(member.info.address)
        if not any(m.state is MemberState.ALIVE for m in members):
            for seed in self._seeds:
                self._dial_quietly(seed)

    # --- messages ---------------------------------------------------------------------

    def on_gossip(self, conn: Connection, message: Gossip) -> None:
        node_id = self.links.node_of(conn)
        if node_id is None and conn.state is ConnState.OPEN and self.opened(conn):
            # The member's view can overtake our own registration of the link.
            node_id = self.links.node_of(conn)
        if node_id is None or self.swim is None:
            return  # a link that closed meanwhile, or this node itself
        self._run(self.swim.received(node_id, message.body, time.monotonic()))
        if isinstance(message.body, Sync):
            joined = self._joining.pop(node_id, None)
            if joined is not None and not joined.done():
                joined.set_result(None)

    def advertise(self) -> None:
        """Our endpoints changed (added, restarting, crashed, gone): tell every member."""
        if self.swim is not None:
            self._advertised = own_advert(self.routes, self.node_id)
            self._run(self.swim.set_advert(self._advertised, time.monotonic()))

    def _refresh_load(self, now: float) -> None:
        assert self.swim is not None
        advert = own_advert(self.routes, self.node_id)
        if load_moved(self._advertised, advert):
            self._advertised = advert
            self._run(self.swim.set_advert(advert, now, push=False))

    def _run(self, instructions: list[Instruction]) -> None:
        """Carry out what the membership core decided."""
        changed = False
        for instruction in instructions:
            match instruction:
                case Send(to=to, message=body):
                    conn = self.links.link_for(to)
                    if conn is not None and conn.state is ConnState.OPEN:
                        conn.send(Gossip(body))
                case MemberChanged(member=member, old=old, new=new):
                    self._member_changed(member, old, new)
                    changed = True
                case AdvertChanged(node_id=node_id, advert=advert):
                    if node_id != self.node_id and well_formed(advert):
                        lost = apply_advert(self.routes, node_id, advert)
                        if lost:
                            self.calls.endpoint_lost(lost, f"node {node_id} lost an endpoint")
                        # Parked calls may go to what appeared or resumed, or fail now.
                        self.calls.endpoints_added()
        if changed:
            self._on_members_changed()

    def _member_changed(self, member: Member, old: MemberState | None, new: MemberState) -> None:
        info = member.info
        node_id = info.node_id
        if node_id == self.node_id:
            return
        if new is MemberState.ALIVE:
            if old is not MemberState.SUSPECT:
                log.info("member %s (%s) is alive", info.name, info.address)
            if self.links.link_for(node_id) is None and node_id > self.node_id:
                # Of two members that learn of each other, the smaller id
                # dials; the other dials only if still unlinked at repair time.
                self._dial_quietly(info.address)
        elif new is MemberState.SUSPECT:
            log.warning("member %s (%s) is suspected: no answer to probes", info.name, info.address)
        else:
            gone = "left" if new is MemberState.LEFT else "is dead"
            lost = set(self.routes.remove_node(node_id))
            log.warning(
                "member %s (%s) %s; dropped %d endpoints", info.name, info.address, gone, len(lost)
            )
            self.calls.endpoint_lost(lost, f"node {info.name} {gone}")
            self.calls.endpoints_added()  # calls waiting for its endpoints fail now
            for conn in self.links.links_to(node_id):
                conn.close()
        self._update_reachable(node_id)

    def _update_reachable(self, node_id: str) -> None:
        """Route to a member's endpoints only while it is ALIVE and a link to it is open."""
        assert self.swim is not None
        member = self.swim.member(node_id)
        reachable = (
            member is not None
            and member.state is MemberState.ALIVE
            and self.links.link_for(node_id) is not None
        )
        was = self.routes.is_reachable(node_id)
        self.routes.set_reachable(node_id, reachable)
        if reachable and not was:
            self.calls.endpoints_added()  # calls parked for it go now

    # --- links closing ----------------------------------------------------------------

    def on_close(self, conn: Connection, sent: set[int]) -> None:
        """A link closed; ``sent``: ids of the calls we forwarded over it, unanswered."""
        node_id = self.links.node_of(conn)
        if node_id is None or self.swim is None:
            return  # never a member link (or this node itself)
        if sent:
            # The peer stops those calls when it sees the close: move them now,
            # do not wait for a verdict on the member.
            endpoints = {ep.endpoint_id for ep in self.routes.endpoints() if ep.node_id == node_id}
            self.calls.endpoint_lost(endpoints, f"the link to node {node_id} closed", calls=sent)
            self.calls.endpoints_added()
        if self.links.closed(conn) is None:
            return  # another link to that node is still open
        self._update_reachable(node_id)
        self._run(self.swim.link_closed(node_id, time.monotonic()))

    # --- questions --------------------------------------------------------------------

    def members(self) -> list[Member]:
        """Every member this node knows, itself included."""
        return self.swim.members() if self.swim is not None else []

    def link_for(self, node_id: str) -> Connection | None:
        return self.links.link_for(node_id)

    def alive_addresses(self) -> tuple[str, ...]:
        """The addresses of the other members now ALIVE (what clients may fail over to)."""
        return tuple(
            m.info.address
            for m in self.members()
            if m.state is MemberState.ALIVE and m.info.node_id != self.node_id
        )
