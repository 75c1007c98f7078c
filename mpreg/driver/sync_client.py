"""Sync requests from the caller's own thread, over a blocking connection.

The sync facade (``mpreg.request``) uses this when it can: one send and the
answers read right here, instead of a hop to the client's event-loop thread
and back. A request that passes Futures (they live in the async client's
session), or a second thread calling at the same time, goes the async way.

The blocking connection goes to the async client's node and follows it when
it fails over (``generation``). When the node is lost, the request is handed
to the async client (:class:`Handover`), which waits for the next node: as it
was, if it never got out whole; with one retry used, if it was lost while it
ran; never, if it must not repeat (``retries=0``): that raises ClusterUnavailable.
A node that hangs closes nothing: the async client's watchdog counts a request
waiting here as work (:meth:`SyncClient.busy`) and, when it gives the node up,
wakes the blocked receive (:meth:`SyncClient.interrupt`), which is then a loss.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from ssl import SSLContext
from typing import Any, Protocol

from mpreg.commands import Command
from mpreg.driver.futures import Future
from mpreg.driver.lanes import lanes_wanted, one_call
from mpreg.driver.requests import (
    DEFAULT_RETRIES,
    Collector,
    TaskIds,
    build_batch,
    deadline_after,
)
from mpreg.driver.sync_lanes import LaneLost, LaneUnopened, SyncLanes
from mpreg.errors import ActorDiedError, ClusterUnavailable, DeadlineExceeded, MpregError
from mpreg.protocol.failures import from_info
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.messages import BatchRejected, Cancel, SubmitBatch, TaskDone
from mpreg.transport.blocking import BlockingConnection
from mpreg.transport.connection import parse_address

# A cancel is a courtesy to the cluster: never hold the caller up for long sending it.
CANCEL_SEND_TIMEOUT = 1.0


class _NotHere(Exception):
    """Found a Future while planning: the request must go the async way.

    Raised from inside the planner's ``futures`` callback to stop planning at
    once, and caught in :meth:`SyncClient.request`: it never leaves this module.
    """


class _Lost(Exception):
    """The connection was lost after the whole request went out (caught in this module)."""


class Followed(Protocol):
    """The async client whose node the sync path uses (:class:`~mpreg.driver.client.Client`)."""

    @property
    def address(self) -> str: ...

    @property
    def generation(self) -> int: ...

    @property
    def connected(self) -> bool: ...


class _Fixed:
    """One node, for a SyncClient used on its own: no async client to fail over with."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.generation = 1
        self.connected = True


@dataclass(frozen=True, slots=True)
class Handover:
    """The request goes the async way, with these ``retries`` and ``timeout``.

    ``lost`` is the generation of the client's connection whose node the sync
    path saw go away (the async client waits until it saw it too), else None.
    """

    retries: int
    timeout: float | None
    lost: int | None = None


class SyncClient:
    """Blocking request() over its own connection to the followed client's node; opened on use.

    Given an address instead of a client, it uses that one node, and losing it
    raises ClusterUnavailable.
    """

    def __init__(
        self,
        client: Followed | str,
        token: str,
        context: SSLContext | None = None,
        *,
        lanes: bool | None = None,
    ) -> None:
        self._follows = not isinstance(client, str)
        self.client: Followed = _Fixed(client) if isinstance(client, str) else client
        self.token = token
        self._context = context  # TLS, as the async client's link uses it; None: clear text
        self._conn: BlockingConnection | None = None
        self._generation = 0  # the client's when _conn was opened: its node
        self._address = ""  # that node's
        self._lock = threading.Lock()
        self._task_ids = TaskIds()
        self.last_where: dict[str, str] = {}
        # One command, no futures: straight to a process of the node (mpreg.driver.sync_lanes).
        self.lanes = SyncLanes("sync-client", context, enabled=lanes_wanted(lanes))

    def request(
        self,
        commands: Sequence[Command],
        *,
        timeout: float | None,
        return_all: bool,
        retries: int = DEFAULT_RETRIES,
    ) -> dict[str, Any] | Handover:
        """Like Client.request, or a Handover when the async path must take it.

        That is when ``commands`` pass Futures (they live in the async
        client's session), another thread is using this connection, or the
        node is (being) failed over from. Raises ClusterUnavailable if the node
        was lost while a request with ``retries=0`` ran.
        """
        if not self._lock.acquire(blocking=False):
            return Handover(retries, timeout)
        try:
            return self._request(commands, timeout, return_all, retries)
        except _NotHere:
            return Handover(retries, timeout)
        finally:
            self._lock.release()

    def _cancel(self, conn: BlockingConnection, task_ids: Iterable[int]) -> None:
        """Ask the node to drop or cancel tasks this caller gave up on (best effort)."""
        with contextlib.suppress(MpregError, OSError):
            conn.send(Cancel(tuple(task_ids)), time.monotonic() + CANCEL_SEND_TIMEOUT)

    def _request(
        self, commands: Sequence[Command], timeout: float | None, return_all: bool, retries: int
    ) -> dict[str, Any] | Handover:
        deadline = None if timeout is None else time.monotonic() + timeout
        batch, names = build_batch(
            commands,
            ids=self._task_ids,
            return_all=return_all,
            retries=retries,
            futures=_no_futures,
            deadline=deadline_after(timeout),
        )
        if self.lanes.enabled and one_call(batch):
            answered, batch = self._on_lane(batch, names, deadline, timeout)
            if answered is not None:
                return answered
        first = batch.batch_id
        ids = {spec.task_id for spec in batch.tasks}
        try:
            conn = self._connection()
            conn.send(batch, deadline)
        except ClusterUnavailable:
            if not self._follows:
                raise
            # Nothing went out whole: the async client sends it once it has a node.
            return Handover(retries, _left(deadline), self._generation)
        except KeyboardInterrupt:
            # A half-sent batch gets no Cancel: the node only sees a broken frame
            # and a disconnect. This connection is done; the next request opens one.
            self.close_connection()
            raise
        try:
            return self._collect(conn, Collector(names), ids, first, deadline, timeout)
        except _Lost as lost:
            cause = lost.__cause__
            assert isinstance(cause, ClusterUnavailable)
            if not self._follows:
                raise cause from cause.__cause__  # no other node to go to
            if retries <= 0:
                raise ClusterUnavailable(
                    f"lost node {self._address} while the request ran; it was not "
                    "re-sent to another node because it must not repeat (retries=0)"
                ) from cause
            return Handover(retries - 1, _left(deadline), self._generation)
        except KeyboardInterrupt:
            # The interrupt button: stop the work in the cluster, then let it propagate.
            # It may have cut a frame in half, so this connection is done.
            try:
                self._cancel(conn, ids)
            finally:
                self.close_connection()
            raise

    def _on_lane(
        self,
        batch: SubmitBatch,
        names: dict[int, str],
        deadline: float | None,
        timeout: float | None,
    ) -> tuple[dict[str, Any] | None, SubmitBatch]:
        """The request's results from a lane; or None and the batch the node is to run.

        The batch uses one retry if the lane was lost while the call ran; a
        call that must not repeat raises ActorDiedError then.
        """
        spec = batch.tasks[0]
        try:
            epoch = getattr(self.client, "lane_epoch", 0)  # the async client's, if any
            lane = self.lanes.lane_for(spec, self._connection(), deadline, epoch)
            if lane is None:
                return None, batch
            done = self.lanes.call(lane, spec, deadline, timeout)
        except (ClusterUnavailable, LaneUnopened):
            return None, batch  # the node path sees what became of the node
        except LaneLost as lost:
            if spec.retries <= 0:
                raise ActorDiedError(
                    f"{spec.name!r}: {lost}; not re-sent because it must not repeat (retries=0)"
                ) from lost
            return None, replace(batch, tasks=(replace(spec, retries=spec.retries - 1),))
        collector = Collector(names)
        collector.on_done(done)
        if collector.error is not None:
            raise collector.error
        self.last_where = collector.where
        return collector.ordered_results(), batch

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
            except ClusterUnavailable as exc:
                raise _Lost from exc
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
        """The connection to the client's node; ClusterUnavailable while it has none."""
        conn = self._conn
        client = self.client
        if conn is None or conn.closed or self._generation != client.generation:
            self.close_connection()  # to a node the client no longer uses
            generation = client.generation
            if not client.connected:
                raise ClusterUnavailable(f"reconnecting (lost node {client.address})")
            self._generation = generation  # also when it fails: the node found gone
            self._address = client.address
            host, port = parse_address(self._address)
            handshake = Handshake(
                "connector", self.token.encode(), PeerIdentity("client", "sync-client")
            )
            conn = self._conn = BlockingConnection.open(
                host, port, handshake, context=self._context
            )
        return conn

    def busy(self) -> bool:
        """True while a request waits on this connection (the async client's watchdog asks)."""
        return self._lock.locked()

    def interrupt(self, generation: int) -> None:
        """The async client gave up its node of ``generation`` (it did not answer).

        Called from the client's loop thread: a request blocked on this
        connection to that node wakes up and is handed over (:class:`Handover`).
        """
        conn = self._conn
        if conn is not None and self._generation == generation:
            conn.interrupt(f"node {self._address} did not answer")

    def close_connection(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def close(self) -> None:
        with self._lock:
            self.close_connection()
            self.lanes.close()


def _left(deadline: float | None) -> float | None:
    """Seconds until ``deadline`` (time.monotonic()); DeadlineExceeded once it passed."""
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise DeadlineExceeded("the request passed its deadline while its node was lost")
    return left


def _no_futures(value: Any) -> int | None:
    if isinstance(value, Future):
        raise _NotHere
    return None
