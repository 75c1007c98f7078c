"""Cluster administration over a client connection: rotating the cluster token."""

from __future__ import annotations

from mpreg.driver.client import Client
from mpreg.protocol.admin import RotateToken
from mpreg.protocol.credentials import fingerprint

ROTATE_TIMEOUT = 30.0


async def rotate_token(
    address: str, token: str, salt: bytes, grace: float, *, token_source: str = ""
) -> str:
    """Ask the node at ``address`` to rotate the cluster token by ``salt``; the new fingerprint.

    ``token`` must be the cluster token itself (the node refuses the
    read-only credential). The node spreads the rotation to every member;
    each accepts ``token`` for ``grace`` more seconds. Raises
    AuthenticationError, UsageError (the node refused: grace out of range,
    the token changed meanwhile), ClusterUnavailable, DeadlineExceeded.
    """
    base = fingerprint(token)
    async with Client(
        address, token=token, token_source=token_source, name="mpreg-token"
    ) as client:
        reply = await client._ask(
            lambda rid: RotateToken(rid, base, salt, grace), ROTATE_TIMEOUT, "rotating the token"
        )
    return str(reply.value)
