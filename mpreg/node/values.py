"""Big results held where they were made, and moved straight to the node that uses them.

When a member runs a call another member forwarded with ``hold``, a result of
at least ``HOLD_REMOTE_FROM_BYTES`` stays here (:meth:`PeerValues.hold`) and
the answer says where (:class:`~mpreg.protocol.held.Held`). The session that
owns it passes that :class:`Held` on to whichever call needs it; the node that
hands such a call to its own process first fetches the value from its holder
(:meth:`PeerValues.deliver`), which is often this very node (a chain that stays
on one member moves nothing). The owner frees it (``HeldFree``) once the calls
that use it are done and no future keeps it. What a member holds for a node
it no longer has a link to is dropped: that node's sessions are gone.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import replace

from mpreg.node.links import LinkTable
from mpreg.node.store import Store
from mpreg.protocol.codec import Blob
from mpreg.protocol.messages import (
    Call,
    ErrorInfo,
    Held,
    HeldFetch,
    HeldFree,
    HeldValue,
)
from mpreg.transport.connection import Connection, ConnState

log = logging.getLogger(__name__)

# A result this big, made for another member's session, stays where it was made
# until a call or its driver needs it; a smaller one travels with its answer.
HOLD_REMOTE_FROM_BYTES = 1024 * 1024

Arrived = Callable[[Blob | None, ErrorInfo | None], None]
SendToWorker = Callable[[str, Call], bool]  # Workers.send: False if unreachable
Complete = Callable[[int, Blob | None, ErrorInfo | None], None]  # CallDispatcher.complete


class PeerValues:
    """What this node holds for other members' sessions, and its fetches from other holders."""

    def __init__(
        self,
        node_id: str,
        store: Store,
        links: LinkTable[Connection],
        send_to_worker: SendToWorker,
        complete: Complete,
    ) -> None:
        self.node_id = node_id
        self._store = store
        self._links = links
        self._send_to_worker = send_to_worker
        self._complete = complete
        self._held: dict[int, tuple[str, Blob]] = {}  # key -> (owner node id, value)
        self._keys = itertools.count(1)
        self._asked: dict[int, tuple[str, Arrived]] = {}  # request id -> (holder, callback)
        self._request_ids = itertools.count(1)

    def __repr__(self) -> str:
        return f"<PeerValues holding={len(self._held)} fetching={len(self._asked)}>"

    # --- holding for others ------------------------------------------------------------

    def hold(self, owner: str, value: Blob) -> Held | None:
        """Keep ``value`` for member ``owner``; None if it is small or the store is full."""
        nbytes = value.nbytes
        if nbytes < HOLD_REMOTE_FROM_BYTES or not owner or not self._store.admit(nbytes):
            return None
        key = next(self._keys)
        self._held[key] = (owner, value)
        return Held(self.node_id, key, nbytes)

    def free(self, keys: tuple[int, ...]) -> None:
        for key in keys:
            item = self._held.pop(key, None)
            if item is not None:
                self._store.free(item[1].nbytes)

    def on_message(self, conn: Connection, message: HeldFetch | HeldValue | HeldFree) -> None:
        match message:
            case HeldFetch():
                self.on_fetch(conn, message)
            case HeldValue():
                self.on_value(message)
            case HeldFree(keys=keys):
                self.free(keys)

    def link_closed(self, conn: Connection) -> None:
        """A link to a member closed (call before it leaves the link table)."""
        node_id = self._links.node_of(conn)
        if node_id and not any(c is not conn for c in self._links.links_to(node_id)):
            self.owner_gone(node_id)

    def owner_gone(self, node_id: str) -> None:
        """No link to ``node_id`` is left: what was held for its sessions goes."""
        self.free(tuple(k for k, (owner, _) in self._held.items() if owner == node_id))
        for request_id in [r for r, (holder, _) in self._asked.items() if holder == node_id]:
            _, arrived = self._asked.pop(request_id)
            arrived(None, _lost(f"the link to {node_id}, which held it, closed"))

    def on_fetch(self, conn: Connection, message: HeldFetch) -> None:
        """A member asks for a value held here."""
        item = self._held.get(message.key)
        missing = "" if item is not None else f"nothing is held under key {message.key}"
        if conn.state is ConnState.OPEN:
            conn.send(HeldValue(message.request_id, item[1] if item else None, missing))

    # --- fetching from holders ---------------------------------------------------------

    def fetch(self, held: Held, arrived: Arrived) -> None:
        """Get the value ``held`` describes (here, or from its holder); ``arrived`` gets it."""
        if held.node_id == self.node_id:
            item = self._held.get(held.key)
            if item is None:
                arrived(None, _lost("it was freed on this node"))
            else:
                arrived(item[1], None)
            return
        conn = self._links.link_for(held.node_id)
        if conn is None or conn.state is not ConnState.OPEN:
            arrived(None, _lost(f"its holder {held.node_id} is not connected"))
            return
        request_id = next(self._request_ids)
        self._asked[request_id] = (held.node_id, arrived)
        conn.send(HeldFetch(request_id, held.key))

    def on_value(self, message: HeldValue) -> None:
        asked = self._asked.pop(message.request_id, None)
        if asked is None:
            return
        holder, arrived = asked
        if message.value is None:
            arrived(None, _lost(f"{holder} no longer holds it ({message.missing})"))
        else:
            arrived(message.value, None)

    def release(self, held: Held) -> None:
        """A session no longer needs ``held``: its holder may let it go."""
        if held.node_id == self.node_id:
            self.free((held.key,))
            return
        conn = self._links.link_for(held.node_id)
        if conn is not None and conn.state is ConnState.OPEN:
            conn.send(HeldFree((held.key,)))

    def deliver(self, endpoint_id: str, call: Call) -> bool:
        """Send ``call`` to a local process once its held dependencies are here.

        True: it is on its way (a fetch that fails answers the call with the
        error); False: the process is unreachable now (as ``Workers.send``).
        """
        if not call.held:
            return self._send_to_worker(endpoint_id, call)
        here = {key: self._held.get(h.key) for key, h in call.held if h.node_id == self.node_id}
        if len(here) == len(call.held) and all(here.values()):
            # All held on this node (a chain that stayed here): nothing to wait for.
            deps = (*call.deps, *((key, item[1]) for key, item in here.items() if item))
            return self._send_to_worker(endpoint_id, replace(call, deps=deps, held=()))
        fetched: dict[int, Blob] = {}
        failed: list[ErrorInfo] = []

        def one(dep_key: int) -> Arrived:
            def arrived(value: Blob | None, error: ErrorInfo | None) -> None:
                if error is not None:
                    failed.append(error)
                else:
                    assert value is not None
                    fetched[dep_key] = value
                if len(fetched) + len(failed) == len(call.held):
                    # Later, never inside the dispatcher's send: answering may start other calls.
                    loop = asyncio.get_running_loop()
                    loop.call_soon(self._hand_over, endpoint_id, call, fetched, failed)

            return arrived

        for dep_key, held in call.held:
            self.fetch(held, one(dep_key))
        return True

    def _hand_over(
        self, endpoint_id: str, call: Call, fetched: dict[int, Blob], failed: list[ErrorInfo]
    ) -> None:
        if failed:
            error = replace(failed[0], command=call.command, fun=call.fun)
            self._complete(call.call_id, None, error)
            return
        deps = (*call.deps, *((key, fetched[key]) for key, _ in call.held))
        if not self._send_to_worker(endpoint_id, replace(call, deps=deps, held=())):
            message = f"the process {endpoint_id} went away before {call.command!r} reached it"
            self._complete(call.call_id, None, ErrorInfo(kind="actor-died", message=message))


def _lost(why: str) -> ErrorInfo:
    return ErrorInfo(kind="unavailable", message=f"a dependency's result is gone: {why}")
