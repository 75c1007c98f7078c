"""The node's cluster token: which keys it accepts, and rotating them cluster-wide.

A full-access client asks one node to rotate (``RotateToken``); that node
rotates its :class:`~mpreg.protocol.credentials.TokenRing` and pushes
``TokenRotated`` over every member link. A member holding the old token
rotates too and passes it on (a flood: one that already holds the new token
ignores it), so it reaches members this node has no link to. A member that
links up while the grace lasts is told on its new link. Each node then
accepts the old token until its grace ends; connections already open are
never touched.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from typing import Literal

from mpreg.protocol.admin import RotateToken, TokenRotated
from mpreg.protocol.credentials import Key, TokenRing, fingerprint, rotated_token
from mpreg.protocol.failures import ErrorInfo
from mpreg.protocol.messages import Reply
from mpreg.transport.connection import Connection, ConnState

log = logging.getLogger(__name__)

MAX_GRACE = 7 * 24 * 3600.0  # a week: longer keeps a possibly leaked token alive for no reason

Rotated = Callable[[str, str], None]
"""Told (old token, new token) after each rotation this node takes part in."""


class NodeTokens:
    """The token ring of one node, and the rotation messages that change it."""

    def __init__(
        self, token: str, links: Callable[[], Iterable[Connection]], on_rotated: Rotated
    ) -> None:
        self.ring = TokenRing(token)
        self._links = links  # the open member links, to push a rotation over
        self._on_rotated = on_rotated
        self._last: TokenRotated | None = None  # the latest rotation, told to late links
        self._last_until = 0.0

    def __repr__(self) -> str:
        return f"<NodeTokens {self.ring!r}>"

    def keys(self, side: Literal["connector", "acceptor"]) -> tuple[Key, ...]:
        """What a new connection's handshake accepts (acceptor) or proves (connector)."""
        now = time.monotonic()
        return self.ring.accepted(now) if side == "acceptor" else self.ring.dialling(now)

    def on_rotate(self, request: RotateToken) -> Reply:
        """A client's request (full access checked by the caller); the Reply to send."""
        grace = request.grace
        if not (math.isfinite(grace) and 0 <= grace <= MAX_GRACE):
            return _refused(request, f"grace must be 0 to {MAX_GRACE:g} seconds, got {grace!r}")
        current = self.ring.current
        previous = self.ring.previous
        if request.base != fingerprint(current):
            if previous is not None and rotated_token(previous, request.salt) == current:
                return Reply(request.request_id, fingerprint(current))  # a retry: done already
            return _refused(
                request,
                f"the cluster token changed meanwhile (the node holds {fingerprint(current)}, "
                f"the request was made from {request.base}): read the token again and retry",
            )
        return Reply(request.request_id, fingerprint(self._rotate(request.salt, grace)))

    def on_rotated(self, message: TokenRotated) -> None:
        """A member rotated: follow it if we hold the token it rotated from."""
        if message.base == fingerprint(self.ring.current) and 0 <= message.grace <= MAX_GRACE:
            self._rotate(message.salt, message.grace)

    def linked(self, conn: Connection) -> None:
        """A member link opened: tell it of a rotation whose grace still lasts."""
        left = self._last_until - time.monotonic()
        if self._last is not None and left > 0 and conn.state is ConnState.OPEN:
            conn.send(TokenRotated(self._last.base, self._last.salt, left))

    def _rotate(self, salt: bytes, grace: float) -> str:
        now = time.monotonic()
        old = self.ring.current
        new = self.ring.rotate(salt, grace, now)
        self._last = TokenRotated(fingerprint(old), salt, grace)
        self._last_until = now + grace
        old_fp, new_fp = fingerprint(old), fingerprint(new)
        log.warning("cluster token rotated old=%s new=%s grace=%gs", old_fp, new_fp, grace)
        for conn in self._links():
            if conn.state is ConnState.OPEN:
                conn.send(self._last)
        self._on_rotated(old, new)
        return new


def _refused(request: RotateToken, why: str) -> Reply:
    return Reply(request.request_id, error=ErrorInfo("usage", f"token rotation refused: {why}"))
