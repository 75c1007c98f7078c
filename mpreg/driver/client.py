"""The async client: plans requests in the driver, submits them whole, awaits results.

``async with mpreg.Client(address, token=...) as client`` then
``await client.request([Command(...), ...])``. The planner validates the whole
DAG here; the node checks routes for the whole batch before running any of
it; dependencies are resolved inside the cluster, so a chain of k commands
costs one round trip and intermediate results never travel back here.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
from collections.abc import Iterable, Sequence
from typing import Any

from mpreg.commands import Command
from mpreg.driver import deployments, progress, requesting, streams
from mpreg.driver.arguments import request_future_id
from mpreg.driver.failover import RECONNECT_TIMEOUT
from mpreg.driver.futures import Future
from mpreg.driver.held import Fetches, lost_with
from mpreg.driver.inflight import InFlight
from mpreg.driver.lanes import Lanes, lanes_wanted
from mpreg.driver.link import NodeLink
from mpreg.driver.outbox import Outbox, PendingRequest
from mpreg.driver.requests import (
    DEFAULT_RETRIES,
    TaskIds,
)
from mpreg.driver.submitting import Handoff, prepare_call, put
from mpreg.errors import ClusterUnavailable, DeadlineExceeded
from mpreg.protocol.failures import from_info
from mpreg.protocol.messages import (
    BatchRejected,
    MembersChanged,
    Reply,
    StatusRequest,
    TaskDone,
)
from mpreg.status import ClusterStatus
from mpreg.transport.connection import Connection, ConnState
from mpreg.transport.replies import PendingReplies
from mpreg.transport.tls import TLSFiles

log = logging.getLogger(__name__)

STATUS_TIMEOUT = 30.0


class Client:
    """An asyncio connection to an mpreg cluster (any node), failing over to another member.

    ``token`` defaults to ``$MPREG_TOKEN`` (``token_source`` says where it was read, for
    the error if it does not match); ``tls_cert``/``tls_key``/``tls_ca`` (TLS files, all
    or none) to ``$MPREG_TLS_CERT``/``KEY``/``CA``. :meth:`connect` raises
    ClusterUnavailable if the node cannot be reached and AuthenticationError if it
    refuses the token or certificate. If the node goes away later (not closed by the user),
    the client reconnects in the background to another member its node
    announced, for at most ``reconnect_timeout`` seconds, and re-sends what the
    lost node took with it where retries allow (:mod:`mpreg.driver.failover`).
    """

    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        token_source: str = "",
        name: str = "client",
        reconnect_timeout: float = RECONNECT_TIMEOUT,
        tls_cert: str | None = None,
        tls_key: str | None = None,
        tls_ca: str | None = None,
        lanes: bool | None = None,
    ) -> None:
        self.token = token if token is not None else os.environ.get("MPREG_TOKEN", "")
        source = token_source or ("" if token is not None else "$MPREG_TOKEN")
        self.name = name
        self.tls = TLSFiles.resolve(tls_cert, tls_key, tls_ca).check()  # UsageError: partial
        self.link = NodeLink(
            self, address, self.token, name, reconnect_timeout, self.tls, token_source=source
        )
        self._task_ids = TaskIds()
        self._inflight = InFlight()
        self._waiting = self._inflight.waiting  # the hot path's own name for it
        self._replies = PendingReplies()  # status and deploy questions
        self._outbox = Outbox(self._send_notice)
        self._fetches = Fetches(self)  # held results asked for (mpreg.driver.held)
        self._handoff = Handoff(self._start)  # futures submitted from other threads
        self._streams = streams.StreamTable()  # open streams (mpreg.driver.streams)
        # Calls straight to worker processes (mpreg.driver.lanes); $MPREG_LANES=0: none.
        self.lanes = Lanes(self, enabled=lanes_wanted(lanes), ssl=self.link.ssl)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._loop_thread = 0  # the ident of the thread running _loop
        self.last_where: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"<mpreg.Client {self.address} {self.link.state}>"

    @property
    def address(self) -> str:
        """The node in use: another member's after a failover."""
        return self.link.address

    @property
    def generation(self) -> int:
        """Changes whenever the connection is lost or replaced (the sync path follows it)."""
        return self.link.generation

    @property
    def members(self) -> tuple[str, ...]:
        """The cluster members this client may fail over to (its first address first)."""
        return self.link.members.addresses

    @property
    def lane_epoch(self) -> int:
        """Changes whenever the lanes' routes are forgotten (the sync path follows)."""
        return self.lanes.epoch

    @property
    def connected(self) -> bool:
        return self.link.connected

    @property
    def _conn(self) -> Connection | None:
        """The connection in use, if any (tests watch its messages)."""
        return self.link.conn

    async def __aenter__(self) -> Client:
        await self.connect()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def connect(self) -> None:
        loop = self._loop = self._outbox.loop = asyncio.get_running_loop()
        self._fetches.loop = self._handoff.loop = loop
        self._loop_thread = threading.get_ident()
        await self.link.open()

    async def close(self) -> None:
        """Disconnect for good (no failover); whatever still waits fails with ClusterUnavailable."""
        await self.link.close()
        await self.lanes.close()

    # --- requests -------------------------------------------------------------------

    async def request(
        self,
        commands: Sequence[Command],
        *,
        timeout: float | None = None,
        return_all: bool = False,
        retries: int = DEFAULT_RETRIES,
        trace: bool = False,
    ) -> dict[str, Any]:
        """Run a DAG of commands; return ``{sink name: result}``: see
        :func:`mpreg.driver.requesting.request`."""
        return await requesting.request(
            self, commands, timeout=timeout, return_all=return_all, retries=retries, trace=trace
        )

    submit_request = progress.submit_request  # a handle on a request's progress, at once
    stream = streams.open_stream  # async for item in client.stream("fun", ...)
    put = put  # store a value in the cluster once (mpreg.driver.submitting)

    def submit(
        self,
        fun: str,
        /,
        *args: Any,
        datasets: Iterable[str] = (),
        retries: int = DEFAULT_RETRIES,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Future:
        """Start ``fun(*args, **kwargs)`` where ``datasets`` live; return its Future at once.

        ``datasets``, ``retries`` and ``timeout`` are mpreg's own options, never
        passed to ``fun``: give ``fun`` an argument of one of those names
        positionally. ``retries``: as for :meth:`request`. ``timeout``: seconds
        until the call's deadline; the Future then fails with DeadlineExceeded
        and the cluster drops the call. Call this on the client's loop. While
        the client fails over, the call is sent once it has reconnected.
        """
        future = prepare_call(self, fun, args, kwargs, datasets, retries, timeout)
        self._start(future, timeout)
        return future

    def submit_threadsafe(
        self,
        fun: str,
        /,
        *args: Any,
        datasets: Iterable[str] = (),
        retries: int = DEFAULT_RETRIES,
        timeout: float | None = None,
        **kwargs: Any,
    ) -> Future:
        """:meth:`submit` from any thread: planned and pickled here, sent by the client's loop
        (a burst of submits wakes it once). What ``mpreg.submit`` calls."""
        future = prepare_call(self, fun, args, kwargs, datasets, retries, timeout)
        self._handoff.hand(future, timeout)
        return future

    async def status(self, *, timeout: float | None = STATUS_TIMEOUT) -> ClusterStatus:
        """A snapshot of every node, actor and worker of the cluster.

        Raises DeadlineExceeded if the node does not answer within ``timeout``,
        ClusterUnavailable if it was lost before it answered (ask again).
        """
        reply = await self._ask(lambda rid: StatusRequest(rid), timeout, "cluster status")
        assert isinstance(reply.value, ClusterStatus)
        return reply.value

    deploy = deployments.deploy  # by value: await client.deploy(Model, replicas=2)
    undeploy = deployments.undeploy

    def _check_open(self) -> None:
        if self.link.conn is None or self.link.closing:
            raise ClusterUnavailable(f"not connected to {self.address}")

    def _start(self, future: Future, timeout: float | None) -> None:
        """On the loop: wait for the future's answer, send its call, arm its deadline."""
        if future.done():
            return  # cancelled (or expired) before the loop got to it
        try:
            self.link.reconnect()  # after giving up, it looks for a member again
        except ClusterUnavailable as exc:
            future._fail(exc)  # closed meanwhile
            return
        self._waiting[future.task_id] = future
        self._waiting[-future.task_id] = future
        self._send_future(future)
        if timeout is not None and not future.done():
            # Settled here at the deadline, whatever the node does.
            future.timer = asyncio.get_running_loop().call_later(
                timeout, self._expire, future, timeout
            )

    def _send_future(self, future: Future) -> None:
        """Send a future's call now: on a lane if it may go on one, else through the node (once
        the link is back, if it is down); after the lane futures it uses, if any are running."""
        if future.lane is not None:
            return  # waiting for lane futures it uses: sent when they are done
        if future.deps:
            waits = self.lanes.deps.unfinished(future.deps)
            if waits:
                self.lanes.deps.after(waits, future)
                return
            self.lanes.deps.promote(future.deps)
        elif self.lanes.send(future):
            return
        conn = self.link.conn
        if conn is not None and conn.state is ConnState.OPEN:
            self._inflight.send_future(future, conn, self.link.generation)

    async def fetch(self, futures: Iterable[Future]) -> None:
        await self._fetches.fetch(futures)  # their held values, here (mpreg.driver.held)

    def fetch_soon(self, futures: Sequence[Future]) -> concurrent.futures.Future[None]:
        return self._fetches.fetch_soon(futures)  # fetch(), from another thread

    def cancel_tasks(self, task_ids: Iterable[int]) -> None:
        """Tell the node to drop these tasks if queued, cancel them if running (or ignore them,
        finished); on the client's loop thread. Nothing answers: the caller settles their waiters.
        """
        self._outbox.cancel(task_ids)

    def on_loop_thread(self) -> bool:
        """True in the thread that runs this client's loop (and settles its futures)."""
        return threading.get_ident() == self._loop_thread

    def cancel_futures(self, futures: Sequence[Future]) -> None:
        """Forget these settled futures and send one Cancel for them; from any thread."""
        if self.on_loop_thread():
            self._drop_futures(futures)
        elif self._loop is not None:
            with contextlib.suppress(RuntimeError):  # the loop has closed: nothing to tell
                self._loop.call_soon_threadsafe(self._drop_futures, list(futures))

    def _drop_futures(self, futures: Sequence[Future]) -> None:
        self.lanes.cancel(futures)
        for future in futures:
            self._inflight.forget(future)
        self.cancel_tasks(f.task_id for f in futures)

    def _expire(self, future: Future, timeout: float) -> None:
        future.timer = None
        error = DeadlineExceeded(f"{future.command} did not finish within {timeout:g}s")
        if future._fail(error):
            self._drop_futures([future])

    # --- internals ------------------------------------------------------------------

    def _future_id(self, value: Any) -> int | None:
        """A request's Future argument: its task id (a lane future's value goes to the node)."""
        return self.lanes.deps.future_id(value) or request_future_id(self, value)

    async def _lane_deps_ready(self) -> None:
        await self.lanes.deps.deps_ready()  # the lane futures a request just planned uses

    def _routes_changed(self) -> None:
        self.lanes.reset()  # deployed or undeployed: the next calls ask for their lanes again

    def _settle_lane(self, future: Future, message: TaskDone) -> None:
        self._inflight.forget(future)
        self._inflight.settle(future, message)

    def _fail_future(self, future: Future, error: BaseException) -> None:
        self._inflight.forget(future)
        future._fail(error)

    async def _ask(self, make: Any, timeout: float | None, what: str) -> Reply:
        """Send the question ``make(request_id)``; its Reply, or the error it carries, raised."""
        try:
            async with asyncio.timeout(timeout):
                conn = await self.link.connection()
                async with self._replies.expect() as (rid, future):
                    conn.send(make(rid))
                    reply = await future
        except TimeoutError:
            raise DeadlineExceeded(f"{what}: no answer within {timeout:g}s") from None
        if reply.error is not None:
            raise from_info(reply.error)
        return reply

    def _on_message(self, conn: Connection, message: object) -> None:
        match message:
            case TaskDone(task_id=tid):
                waiter = self._waiting.get(tid)
                if isinstance(waiter, PendingRequest):
                    waiter.on_done(message)
                elif isinstance(waiter, Future):
                    self._inflight.forget(waiter)
                    self._inflight.settle(waiter, message)
                elif not self._fetches.on_done(message):
                    log.debug("late answer for task %d dropped", tid)
            case progress.TaskTrace(task_id=tid):
                progress.on_trace(self._waiting.get(tid), message)
            case BatchRejected(batch_id=bid, error=error):
                waiter = self._waiting.get(-bid)
                if isinstance(waiter, PendingRequest):
                    self._waiting.pop(-bid, None)
                    waiter.fail(from_info(error))
                elif isinstance(waiter, Future):
                    self._inflight.forget(waiter)
                    waiter._fail(from_info(error))
            case Reply():
                self._replies.resolve(message)
            case MembersChanged(addresses=addresses):
                self.link.on_members(addresses)
            case _:
                if not self._streams.on_message(message):
                    log.warning("node sent unexpected %s", type(message).__name__)

    def _release_later(self, task_id: int) -> None:
        """Called from Future.__del__ (any thread): the node may free its result."""
        self._outbox.release(task_id)

    def _send_notice(self, message: object) -> None:
        conn = self.link.conn
        if conn is not None and conn.state is ConnState.OPEN:
            conn.send(message)

    # --- failing over (the link calls these) ------------------------------------------

    def _outstanding(self) -> bool:
        return bool(self._waiting) or bool(self._replies) or bool(self._fetches)

    def _on_lost(self, lost: str) -> None:
        self._replies.fail_all(ClusterUnavailable(f"lost node {lost} before it answered"))
        self._fetches.fail_all(lost_with(lost))
        self._streams.fail_all(streams.unavailable(lost))  # a stream cannot resume elsewhere
        self._inflight.on_lost(lost)

    def _on_reconnected(self, conn: Connection) -> None:
        self.lanes.reset()  # another node: other processes, another session
        self._inflight.on_reconnected(conn, self.link.generation)

    def _on_unavailable(self, error: ClusterUnavailable) -> None:
        self.lanes.reset()
        self._streams.fail_all(error)
        self._inflight.fail_all(error)
        self._replies.fail_all(error)
        self._fetches.fail_all(lambda _: error)
