"""A connection that proved only the read-only credential: it may read status, nothing else.

Its frames were decoded without loading any pickle global
(:func:`mpreg.protocol.codec.decode_restricted`) and its Blobs are never
unpickled. A question it may not ask is answered refused (typed, so the
client raises AuthenticationError); a Release or Cancel is dropped (it names
tasks this node never took from it: a client lets go of a refused submit's
future that way); any other message closes the connection.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from mpreg.protocol.admin import RotateToken
from mpreg.protocol.failures import ErrorInfo
from mpreg.protocol.messages import (
    BatchRejected,
    Cancel,
    Deploy,
    LaneQuery,
    MembersChanged,
    Release,
    Reply,
    StatusRequest,
    SubmitBatch,
    Undeploy,
)
from mpreg.transport.connection import Connection

log = logging.getLogger(__name__)

AnswerStatus = Callable[[Connection, StatusRequest], None]


def admit_read_only(conn: Connection, answer: AnswerStatus, members: tuple[str, ...]) -> None:
    """Serve ``conn`` read-only: status questions answered by ``answer``, the rest refused."""
    conn.on_message = lambda c, m: on_read_only(c, m, answer)
    conn.send(MembersChanged(members))  # a client waits for it before its first question


def on_read_only(conn: Connection, message: object, answer: AnswerStatus) -> None:
    match message:
        case StatusRequest():
            answer(conn, message)
        case SubmitBatch(batch_id=bid):
            conn.send(BatchRejected(bid, _refusal(conn, message)))
        case (
            Deploy(request_id=rid)
            | Undeploy(request_id=rid)
            | RotateToken(request_id=rid)
            | LaneQuery(request_id=rid)  # a lane's ticket lets its holder run code
        ):
            conn.send(Reply(rid, error=_refusal(conn, message)))
        case Release() | Cancel():
            pass
        case _:
            _refusal(conn, message)
            conn.close()


def _refusal(conn: Connection, message: object) -> ErrorInfo:
    what = type(message).__name__
    log.warning("refused %s from read-only peer=%s", what, conn.peer_address)
    return ErrorInfo(
        "auth",
        f"refused {what}: this connection authenticated with the cluster's read-only "
        "credential, which may only read status and metrics; use the cluster token for that",
    )
