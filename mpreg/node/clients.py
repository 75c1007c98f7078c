"""What a node does with the messages its clients send: each goes to the part that handles it.

A client's tasks go to its :class:`~mpreg.node.session.Session`, streams to
:mod:`~mpreg.node.streams`, questions (status, deploys) are answered in tasks
of their own. Apart from :mod:`mpreg.node.node`, which composes the parts.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

from mpreg.node.deployments import Deployments
from mpreg.node.session import Session
from mpreg.node.stats import NodeStatus
from mpreg.node.streams import NodeStreams
from mpreg.protocol.messages import (
    Cancel,
    Deploy,
    Fetch,
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

    streams: NodeStreams
    status: NodeStatus
    deployments: Deployments
    tasks: TaskSet

    async def _reply(self, conn: Connection, answer: Callable[[], Awaitable[Reply]]) -> None: ...


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
        case StatusRequest(request_id=rid, local_only=local_only):
            node.tasks.spawn(node._reply(session.conn, lambda: node.status.answer(rid, local_only)))
        case Deploy():
            is_open = lambda: session.conn.state is ConnState.OPEN  # noqa: E731
            deploy = lambda: node.deployments.deploy(session, message, is_open)  # noqa: E731
            node.tasks.spawn(node._reply(session.conn, deploy))
        case Undeploy():
            node.tasks.spawn(node._reply(session.conn, lambda: node.deployments.undeploy(message)))
        case _:
            log.warning("client sent unexpected %s", type(message).__name__)
