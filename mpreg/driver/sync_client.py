"""Sync requests from the caller's own thread, over a blocking connection.

The sync facade (``mpreg.request``) uses this when it can: one send and the
answers read right here, instead of a hop to the client's event-loop thread
and back. A request that passes Futures (they live in the async client's
session), or a second thread calling at the same time, goes the async way.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Sequence
from typing import Any

from mpreg.commands import Command
from mpreg.driver.futures import Future
from mpreg.driver.requests import (
    DEFAULT_RETRIES,
    Collector,
    TaskIds,
    build_batch,
    deadline_after,
)
from mpreg.errors import ClusterUnavailable, DeadlineExceeded, MpregError
from mpreg.protocol.failures import from_info
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.messages import BatchRejected, Cancel, TaskDone
from mpreg.transport.blocking import BlockingConnection
from mpreg.transport.connection import parse_address

# A cancel is a courtesy to the cluster: never hold the caller up for long sending it.
CANCEL_SEND_TIMEOUT = 1.0


class _NotHere(Exception):
    """Found a Future while planning: the request must go the async way.

    Raised from inside the planner's ``futures`` callback to stop planning at
    once, and caught in :meth:`SyncClient.request`: it never leaves this module.
    """


class SyncClient:
    """Blocking request() over its own connection; opened on first use."""

    def __init__(self, address: str, token: str) -> None:
        self.address = address
        self.token = token
        self._conn: BlockingConnection | None = None
        self._lock = threading.Lock()
        self._task_ids = TaskIds()
        self.last_where: dict[str, str] = {}

    def request(
        self,
        commands: Sequence[Command],
        *,
        timeout: float | None,
        return_all: bool,
        retries: int = DEFAULT_RETRIES,
    ) -> dict[str, Any] | None:
        """Like Client.request; None when the async path must take it.

        That is when ``commands`` pass Futures (they live in the async
        client's session) or another thread is using this connection.
        """
        if not self._lock.acquire(blocking=False):
            return None
        try:
            return self._request(commands, timeout, return_all, retries)
        except _NotHere:
            return None
        finally:
            self._lock.release()

    def _cancel(self, conn: BlockingConnection, task_ids: Iterable[int]) -> None:
        """Ask the node to drop or cancel tasks this caller gave up on (best effort)."""
        with contextlib.suppress(MpregError, OSError):
            conn.send(Cancel(tuple(task_ids)), time.monotonic() + CANCEL_SEND_TIMEOUT)

    def _request(
        self, commands: Sequence[Command], timeout: float | None, return_all: bool, retries: int
    ) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        batch, names = build_batch(
            commands,
            ids=self._task_ids,
            return_all=return_all,
            retries=retries,
            futures=_no_futures,
            deadline=deadline_after(timeout),
        )
        first = batch.batch_id
        ids = {spec.task_id for spec in batch.tasks}
        conn = self._connection()
        sent = False
        try:
            conn.send(batch, deadline)
            sent = True
            return self._collect(conn, Collector(names), ids, first, deadline, timeout)
        except KeyboardInterrupt:
            # The interrupt button: stop the work in the cluster, then let it propagate.
            # It may have cut a frame in half either way, so this connection is done
            # (the next request opens a new one); a half-sent batch gets no Cancel, the
            # node only sees a broken frame and a disconnect.
            try:
                if sent:
                    self._cancel(conn, ids)
            finally:
                conn.close()
            raise

    def _collect(
        self,
        conn: BlockingConnection,
        collector: Collector,
        ids: set[int],
        first: int,
        deadline: float | None,
        timeout: float | None,
    ) -> dict[str, Any]:
        while not collector.finished:
            try:
                message = conn.receive(deadline)
            except DeadlineExceeded:
                self._cancel(conn, ids)
                raise DeadlineExceeded(
                    f"request did not finish within {timeout:g}s "
                    f"(waiting on {collector.missing_names()})"
                ) from None
            match message:
                case TaskDone(task_id=task_id) if task_id in ids:
                    collector.on_done(message)
                case BatchRejected(batch_id=batch_id, error=error) if batch_id == first:
                    raise from_info(error)
                case _:
                    pass  # a late answer to a request that timed out
        if collector.error is not None:
            raise collector.error
        self.last_where = collector.where
        return collector.ordered_results()

    def _connection(self) -> BlockingConnection:
        conn = self._conn
        if conn is None or conn.closed:
            host, port = parse_address(self.address)
            handshake = Handshake(
                "connector", self.token.encode(), PeerIdentity("client", "sync-client")
            )
            try:
                conn = self._conn = BlockingConnection.open(host, port, handshake)
            except ClusterUnavailable:
                self._conn = None
                raise
        return conn

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


def _no_futures(value: Any) -> int | None:
    if isinstance(value, Future):
        raise _NotHere
    return None
