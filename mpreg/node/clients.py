"""A node's clients: a session for each, and each message it sends to the part that handles it.

A client's tasks go to its :class:`~mpreg.node.session.Session`, streams to
:mod:`~mpreg.node.streams`, lane questions to :mod:`~mpreg.node.lanes`;
questions (status, deploys) are answered in tasks of their own. Apart from
:mod:`mpreg.node.node`, which composes the parts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from mpreg.config import NodeConfig
from mpreg.node.deployments import Deployments
from mpreg.node.dispatch import CallDispatcher
from mpreg.node.fusion import places_in
from mpreg.node.lanes import NodeLanes
from mpreg.node.pressure import Backpressure
from mpreg.node.routing import RoutingTable
from mpreg.node.session import Session
from mpreg.node.stats import NodeStatus
from mpreg.node.store import Store
from mpreg.node.streams import NodeStreams
from mpreg.node.tokens import NodeTokens
from mpreg.node.values import PeerValues
from mpreg.protocol.admin import RotateToken
from mpreg.protocol.messages import (
    Cancel,
    Deploy,
    Fetch,
    LaneQuery,
    MembersChanged,
    Put,
    Release,
    Reply,
    StatusRequest,
    SubmitBatch,
    Undeploy,
)
from mpreg.protocol.streams import StreamCredit, StreamStart
from mpreg.tasks import TaskSet
from mpreg.transport.connection import Connection, ConnState

log = logging.getLogger("mpreg.node.node")


class ClientHost(Protocol):
    """The parts of a node its clients' messages go to (:class:`~mpreg.node.node.Node`)."""

    config: NodeConfig
    routes: RoutingTable
    calls: CallDispatcher
    pressure: Backpressure
    store: Store
    values: PeerValues
    sessions: set[Session]
    streams: NodeStreams
    status: NodeStatus
    deployments: Deployments
    lanes: NodeLanes
    tasks: TaskSet
    tokens: NodeTokens

    def member_addresses(self) -> tuple[str, ...]: ...

    stopping: bool

    def _answer_status(self, conn: Connection, request: StatusRequest) -> None: ...

    async def _reply(self, conn: Connection, answer: Callable[[], Awaitable[Reply]]) -> None: ...


def open_session(node: ClientHost, conn: Connection) -> Session:
    """A client authenticated on ``conn``: its session, and its messages routed from now on."""
    session = Session(
        conn,
        node.routes.check,
        node.calls.submit,
        # Too much work queued for this client: stop taking more from it.
        on_busy=lambda busy: node.pressure.client_busy(conn, busy),
        max_queued=node.config.max_queued_per_client,
        max_queued_bytes=node.config.max_queued_bytes_per_client,
        store=node.store,
        values=node.values,
        places=places_in(node.routes),
    )
    node.sessions.add(session)
    # A client that does not read its results may not send more work.
    conn.on_pressure = node.pressure.client_pressure
    conn.on_message = lambda c, m: on_client_message(node, session, m)
    conn.on_close = lambda c, e: _closed(node, session)
    # Whom the client may fail over to if this node goes away.
    conn.send(MembersChanged(node.member_addresses()))
    return session


def on_client_message(node: ClientHost, session: Session, message: object) -> None:
    """Route one message from a client connection to the part of its node that handles it."""
    match message:
        case SubmitBatch():
            session.on_submit(message)
        case Release():
            session.on_release(message)
        case Fetch():
            session.on_fetch(message)
        case Put():
            session.on_put(message)
        case Cancel():
            session.on_cancel(message)
            node.streams.cancel(session.conn, message.task_ids)
        case StreamStart():
            node.streams.start(session.conn, message)
        case StreamCredit():
            node.streams.on_credit(session.conn, message)
        case StatusRequest():
            node._answer_status(session.conn, message)
        case LaneQuery():
            session.conn.send(node.lanes.answer(session, message))
        case Deploy():
            is_open = lambda: session.conn.state is ConnState.OPEN  # noqa: E731
            deploy = lambda: node.deployments.deploy(session, message, is_open)  # noqa: E731
            node.tasks.spawn(node._reply(session.conn, deploy))
        case Undeploy():
            node.tasks.spawn(node._reply(session.conn, lambda: node.deployments.undeploy(message)))
        case RotateToken():  # a full-access client: read-only ones never get here
            session.conn.send(node.tokens.on_rotate(message))
        case _:
            log.warning("client sent unexpected %s", type(message).__name__)


def _closed(node: ClientHost, session: Session) -> None:
    """The client went away: its session's work stops, its owned deployments end."""
    session.close()
    node.lanes.session_closed(session)
    node.streams.link_closed(session.conn)
    node.sessions.discard(session)
    node.pressure.drop_client(session.conn)
    if session in node.deployments.owned and not node.stopping:
        node.tasks.spawn(node.deployments.session_closed(session))
