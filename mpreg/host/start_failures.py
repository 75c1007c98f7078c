"""Why a node did not start, typed where it is first seen.

The node process classifies its own start-up exception (it still holds the
OSError and its errno) into the fields of its announce line; the parent
turns those fields into a :class:`~mpreg.errors.NodeStartError` subclass.
Nobody downstream reads meaning out of error text.
"""

from __future__ import annotations

import errno
from enum import StrEnum

from mpreg.config import NodeConfig, node_label
from mpreg.errors import AddressInUse, ClusterUnavailable, JoinFailed, NodeStartError
from mpreg.host.announce import Announce


class StartFailure(StrEnum):
    """The ``reason`` field of a failed node's announce line."""

    ADDRESS_IN_USE = "address_in_use"
    JOIN_FAILED = "join_failed"
    OTHER = "other"


def failure_announce(exc: BaseException, config: NodeConfig) -> Announce:
    """The announce of a node whose start raised ``exc``: its text, and why, typed."""
    reason = StartFailure.OTHER
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        reason = StartFailure.ADDRESS_IN_USE
    elif isinstance(exc, ClusterUnavailable) and config.peers:
        reason = StartFailure.JOIN_FAILED  # it listened and its workers serve: the join failed
    return Announce(
        error=f"{type(exc).__name__}: {exc}",
        reason=reason.value,
        message=str(exc),
        errno=exc.errno if isinstance(exc, OSError) else None,
        name=config.name,
    )


def start_error(
    config: NodeConfig, announced: Announce | None, detail: str | None = None
) -> NodeStartError:
    """The typed error for node ``config`` that announced ``announced`` instead of an address.

    ``announced`` is None when the node said nothing before it died; ``detail``
    replaces the announced error text in the message (an exit code and log
    tail when the node said nothing).
    """
    said = announced or Announce(error="")
    name = said.name or node_label(config)
    text = f"node {name!r} failed to start: {detail or said.error}"
    try:
        reason = StartFailure(said.reason or StartFailure.OTHER)
    except ValueError:
        reason = StartFailure.OTHER
    if reason is StartFailure.ADDRESS_IN_USE:
        return AddressInUse(text, node=name, host=config.host, port=config.port)
    if reason is StartFailure.JOIN_FAILED:
        return JoinFailed(text, node=name, peers=config.peers, reason=said.message)
    return NodeStartError(text, node=name)
