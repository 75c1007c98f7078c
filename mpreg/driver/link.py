"""The driver's connection to its node, and failing over to another member when it is lost.

A :class:`NodeLink` holds one connection at a time. When it closes without the
user closing it (the node died, the link was cut), the link dials the members
the node announced (:func:`~mpreg.driver.failover.dial_first`) in a background
task it owns, for at most ``reconnect_timeout`` seconds; meanwhile
:meth:`NodeLink.connection` makes callers wait for the new connection. What
happens to the calls in flight is its owner's business (the
:class:`~mpreg.driver.client.Client`): the link tells it through
:class:`LinkOwner`.

A node that hangs closes nothing, so the link also watches for silence while
its owner (or a side connection: the sync path's) waits for the node, and
gives the node up when it stays silent (:mod:`mpreg.driver.watchdog`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Protocol

from mpreg.driver.failover import Members, dial_first
from mpreg.driver.watchdog import (
    CONFIRM_TIMEOUT,
    PROBE_ID,
    TICK,
    SideConnection,
    Silence,
    Verdict,
)
from mpreg.errors import AuthenticationError, ClusterUnavailable, ProtocolError
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.messages import StatusRequest
from mpreg.tasks import TaskSet
from mpreg.transport.connection import (
    HANDSHAKE_TIMEOUT,
    Connection,
    ConnState,
    parse_address,
)
from mpreg.transport.dial import connect
from mpreg.transport.tls import TLSFiles, client_context

log = logging.getLogger(__name__)

# How long a request handed over by the sync path waits for the link to see the
# loss the sync connection saw (the kernel closed both at once: about a loop turn).
LOSS_GRACE = 1.0
# How long open() waits for the node's member list (it follows the handshake at once).
MEMBERS_WAIT = 2.0


class LinkOwner(Protocol):
    """What a link tells the client that uses it (all on the client's loop)."""

    def _on_message(self, conn: Connection, message: object) -> None: ...

    def _outstanding(self) -> bool:
        """True while a call or question waits for an answer from the node."""
        ...

    def _on_lost(self, lost: str) -> None:
        """The node at ``lost`` went away; the link is reconnecting."""
        ...

    def _on_reconnected(self, conn: Connection) -> None:
        """A new connection serves; it is used once this returns."""
        ...

    def _on_unavailable(self, error: ClusterUnavailable) -> None:
        """No node is reachable (gave up reconnecting) or the user closed the link."""
        ...


class NodeLink:
    """One connection to a cluster member at a time; ``address`` is the one in use."""

    def __init__(
        self,
        owner: LinkOwner,
        address: str,
        token: str,
        name: str,
        reconnect_timeout: float,
        tls: TLSFiles | None = None,
        token_source: str = "",
    ) -> None:
        self._owner = owner
        # TLS for every connection to the cluster (the sync path's too); None: clear text.
        self.ssl = client_context(tls) if tls is not None and tls.enabled else None
        self.address = address
        self.members = Members(address)
        self.reconnect_timeout = reconnect_timeout
        self.conn: Connection | None = None
        # Changes whenever the connection is lost or replaced (the sync path follows it).
        self.generation = 0
        self.closing = False  # the user closed it: never reconnect
        identity = PeerIdentity("client", name)
        self._handshake = Handshake("connector", token.encode(), identity, source=token_source)
        self._failover: asyncio.Future[None] | None = None  # set while reconnecting
        self._tasks = TaskSet("client link")
        self._members_heard = asyncio.Event()
        # The watchdog: other connections to the node whose calls it watches too.
        self.sides: list[SideConnection] = []
        self.probes = 0  # probes sent, ever (an idle client sends none)
        self._silence = Silence()
        self._ticker: asyncio.TimerHandle | None = None
        self._confirming = False  # a check that the silent node takes connections runs

    @property
    def connected(self) -> bool:
        return self.conn is not None and self.conn.state is ConnState.OPEN

    @property
    def state(self) -> str:
        """open, reconnecting, unavailable (gave up: the next request looks again), closed."""
        if self.connected:
            return "open"
        if self._failover is not None:
            return "reconnecting"
        return "closed" if self.closing or self.conn is None else "unavailable"

    async def open(self) -> None:
        """Connect to ``address``; raises ClusterUnavailable or AuthenticationError."""
        self.closing = False
        self._members_heard.clear()
        self._use(await self._dial(self.address, HANDSHAKE_TIMEOUT), self.address)
        if self._ticker is None:
            self._ticker = asyncio.get_running_loop().call_later(TICK, self._watch)
        # Known from the start, so a node lost at once can be failed over from.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(MEMBERS_WAIT):
                await self._members_heard.wait()

    def on_members(self, addresses: tuple[str, ...]) -> None:
        """The node announced the cluster's members (``MembersChanged``)."""
        self.members.update(addresses)
        self._members_heard.set()

    async def close(self) -> None:
        """Disconnect for good: stop reconnecting; the owner hears ``_on_unavailable``."""
        self.closing = True
        if self._ticker is not None:
            self._ticker.cancel()
            self._ticker = None
        closed = ClusterUnavailable(f"the client of {self.address} was closed")
        if self._failover is not None:
            _settle(self._failover, closed)
            self._failover = None
        await self._tasks.close()  # a reconnect under way stops
        if self.conn is not None:
            self.conn.close()
            await self.conn.closed
        self._owner._on_unavailable(closed)

    async def connection(self) -> Connection:
        """The open connection, waiting while the link fails over; raises ClusterUnavailable."""
        while True:
            conn = self.conn
            if conn is not None and conn.state is ConnState.OPEN:
                return conn
            self.reconnect()
            assert self._failover is not None
            await asyncio.shield(self._failover)

    async def send(self, message: object) -> None:
        """Send ``message`` once there is a connection (waiting while failing over) and
        the node keeps up (backpressure); raises ClusterUnavailable."""
        conn = self.conn
        while True:
            if conn is None or conn.state is not ConnState.OPEN:
                conn = await self.connection()
            try:
                await conn.drain()
            except ClusterUnavailable:
                conn = None
                continue  # lost before it went out: it goes to the next node as it is
            conn.send(message)
            return

    def reconnect(self) -> None:
        """Look for a member now, unless already looking (after giving up, it looks again).

        Raises ClusterUnavailable if the link was never opened or was closed.
        """
        if self.conn is None or self.closing:
            raise ClusterUnavailable(f"not connected to {self.address}")
        if self._failover is None and self.conn.state is not ConnState.OPEN:
            self._start_failover(self.address)

    async def lost_elsewhere(self, generation: int, within: float = LOSS_GRACE) -> None:
        """Another connection to this node (the sync path's) was just lost.

        Wait (at most ``within`` seconds) until the link's own connection of
        ``generation`` has closed too, so nothing more is sent to a node that
        is gone; a request sent there now would be taken for one lost while it ran.
        """
        conn = self.conn
        if self.generation != generation or conn is None or conn.state is not ConnState.OPEN:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(within):
                await asyncio.shield(conn.closed)

    # --- internals ------------------------------------------------------------------

    async def _dial(self, address: str, timeout: float) -> Connection:
        host, port = parse_address(address)
        return await connect(
            host,
            port,
            self._handshake,
            on_message=self._owner._on_message,
            on_close=self._on_close,
            timeout=timeout,
            ssl=self.ssl,
        )

    def _use(self, conn: Connection, address: str) -> None:
        self.conn = conn
        self.address = address
        self.generation += 1
        self._silence.heard(time.monotonic(), conn.received)

    def _on_close(self, conn: Connection, exc: BaseException | None) -> None:
        if conn is not self.conn:
            return  # an older connection, already replaced
        self.generation += 1
        if self.closing:
            return  # close() tells the owner
        self._owner._on_lost(self.address)
        self._start_failover(self.address)

    def _start_failover(self, lost: str) -> None:
        self._failover = asyncio.get_running_loop().create_future()
        self._tasks.spawn(self._fail_over(lost, self._failover))

    async def _fail_over(self, lost: str, done: asyncio.Future[None]) -> None:
        try:
            conn, address = await dial_first(
                lambda: self.members.order_after(lost), self._dial, timeout=self.reconnect_timeout
            )
        except ClusterUnavailable as exc:
            log.warning("lost node %s; %s", lost, exc)
            error = ClusterUnavailable(f"lost node {lost}; {exc}")
            self._failover = None
            self._owner._on_unavailable(error)
            _settle(done, error)
            return
        if self.closing:  # closed while the dial finished
            conn.close()
            return
        log.warning("lost node %s; reconnected to %s", lost, address)
        self._use(conn, address)
        self._failover = None
        self._owner._on_reconnected(conn)
        _settle(done, None)

    # --- the watchdog (mpreg.driver.watchdog) -------------------------------------------

    def _watch(self) -> None:
        """Once per TICK: has the node been silent while someone waits for it?"""
        self._ticker = asyncio.get_running_loop().call_later(TICK, self._watch)
        conn = self.conn
        if conn is None or conn.state is not ConnState.OPEN or self._confirming:
            return
        busy = self._owner._outstanding() or any(side.busy() for side in self.sides)
        match self._silence.tick(time.monotonic(), conn.received, busy):
            case Verdict.PROBE:
                self.probes += 1
                conn.send(StatusRequest(PROBE_ID, local_only=True))
            case Verdict.CONFIRM:
                self._confirming = True
                self._tasks.spawn(self._confirm(conn))

    async def _confirm(self, conn: Connection) -> None:
        """``conn``'s node said nothing for SILENCE seconds, the probe unanswered: give it
        up, unless it takes a new connection (it stopped reading from us, busy with our work)."""
        heard = conn.received
        try:
            alive = await self._answers(self.address)
        finally:
            self._confirming = False
        if conn is not self.conn or conn.state is not ConnState.OPEN:
            return  # lost or replaced meanwhile
        now = time.monotonic()
        if alive or conn.received != heard:
            log.debug("node %s silent for %.1f s but alive", self.address, self._silence.quiet(now))
            self._silence.heard(now, conn.received)
            return
        log.warning(
            "node %s did not answer for %.0f s; failing over",
            self.address,
            self._silence.quiet(now),
        )
        generation = self.generation
        for side in self.sides:
            side.interrupt(generation)
        conn.abort()  # close() would wait for the hung node to read what is queued for it

    async def _answers(self, address: str) -> bool:
        """Does the node at ``address`` complete a handshake within CONFIRM_TIMEOUT?"""
        host, port = parse_address(address)
        try:
            spare = await connect(
                host, port, self._handshake, timeout=CONFIRM_TIMEOUT, ssl=self.ssl
            )
        except ClusterUnavailable:
            return False
        except (AuthenticationError, ProtocolError):
            return True  # it answered, if not kindly: its loop runs
        spare.close()
        return True


def _settle(future: asyncio.Future[None], error: BaseException | None) -> None:
    """Resolve a failover future; its error counts as seen (shielded waiters re-raise it)."""
    if future.done():
        return
    if error is None:
        future.set_result(None)
    else:
        future.set_exception(error)
        future.exception()
