"""Messages that change the cluster's credentials: a token rotation, asked for and spread.

Registered with the other wire messages (imported by :mod:`mpreg.protocol`).
Only the random salt travels (:mod:`mpreg.protocol.credentials`): each node
derives the new token from the one it holds, so the secret never crosses a link.
"""

from __future__ import annotations

from dataclasses import dataclass

from mpreg.protocol.schema import message


@message(31)
@dataclass(frozen=True, slots=True)
class RotateToken:
    """Client -> node, full access only: rotate the cluster token, keeping the old for ``grace`` s.

    ``base`` is the fingerprint of the token the client derived the new one
    from: a node holding another refuses (the token changed meanwhile).
    Answered with a Reply whose value is the new token's fingerprint.
    """

    request_id: int
    base: str
    salt: bytes
    grace: float


@message(32)
@dataclass(frozen=True, slots=True)
class TokenRotated:
    """Node -> node: the cluster token ``base`` became its rotation by ``salt``.

    ``grace``: seconds the sender still accepts the old token; a member that
    holds ``base`` rotates too and passes it on, one that holds the new token
    already ignores it. Also sent to members that link up during the grace.
    """

    base: str
    salt: bytes
    grace: float
