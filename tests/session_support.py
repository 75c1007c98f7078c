"""A session's connection to its client, faked: what the session sends, kept (no sockets)."""

from __future__ import annotations

from mpreg.protocol.codec import dumps_value
from mpreg.protocol.messages import TaskDone
from mpreg.transport.connection import ConnState

ARGS = dumps_value(((), {}))  # a task's arguments: none


class FakeConn:
    state = ConnState.OPEN
    peer_address = "test"

    def __init__(self) -> None:
        self.sent: list[object] = []

    def send(self, message: object) -> None:
        self.sent.append(message)

    def done(self) -> dict[int, TaskDone]:
        """The answers sent so far, by task id."""
        return {m.task_id: m for m in self.sent if isinstance(m, TaskDone)}
