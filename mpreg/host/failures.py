"""Why a node did not start, typed where it is first seen.

The node process classifies its own start-up exception (it still holds the
OSError and its errno) into the fields of its announce line; the parent
turns those fields into a :class:`~mpreg.errors.NodeStartError` subclass.
Nobody downstream reads meaning out of error text.
"""

from __future__ import annotations

import errno
from collections.abc import Mapping
from enum import StrEnum
from typing import Any

from mpreg.config import NodeConfig
from mpreg.errors import AddressInUse, ClusterUnavailable, JoinFailed, NodeStartError


class StartFailure(StrEnum):
    """The ``reason`` field of a failed node's announce line."""

    ADDRESS_IN_USE = "address_in_use"
    JOIN_FAILED = "join_failed"
    OTHER = "other"


def failure_fields(exc: BaseException, config: NodeConfig) -> dict[str, Any]:
    """The announce line of a node whose start raised ``exc``.

    ``error`` is the text shown as it is; ``reason`` a :class:`StartFailure`;
    ``message`` the exception's own text; ``errno`` the OS error number, if any.
    """
    reason = StartFailure.OTHER
    if isinstance(exc, OSError) and exc.errno == errno.EADDRINUSE:
        reason = StartFailure.ADDRESS_IN_USE
    elif isinstance(exc, ClusterUnavailable) and config.peers:
        reason = StartFailure.JOIN_FAILED  # it listened and its workers serve: the join failed
    fields: dict[str, Any] = {
        "error": f"{type(exc).__name__}: {exc}",
        "reason": reason.value,
        "message": str(exc),
    }
    if isinstance(exc, OSError) and exc.errno is not None:
        fields["errno"] = exc.errno
    return fields


def start_error(
    config: NodeConfig, announced: Mapping[str, Any], detail: str | None = None
) -> NodeStartError:
    """The typed error for node ``config`` that announced ``announced`` instead of an address.

    ``detail`` replaces the announced error text in the message (an exit
    code and log tail when the node said nothing).
    """
    text = f"node {config.name!r} failed to start: {detail or announced.get('error', '')}"
    try:
        reason = StartFailure(announced.get("reason", StartFailure.OTHER))
    except ValueError:
        reason = StartFailure.OTHER
    if reason is StartFailure.ADDRESS_IN_USE:
        return AddressInUse(text, node=config.name, host=config.host, port=config.port)
    if reason is StartFailure.JOIN_FAILED:
        message = str(announced.get("message", ""))
        return JoinFailed(text, node=config.name, peers=config.peers, reason=message)
    return NodeStartError(text, node=config.name)
