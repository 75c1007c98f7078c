"""The worker process: one actor replica or one plain-function worker.

Started by its node's supervisor as ``python -m mpreg.actors.worker``; dials
the node back, authenticates, receives its spec, builds it once (an actor's
``__init__`` loads its dataset here) and then serves calls until the node
says stop or goes away. Sync functions run inline on the loop (no thread hop
on the hot path); coroutine functions run as tasks, so an async actor serves
calls concurrently.

Every call carries its absolute deadline: one that arrives expired is
answered with a deadline error without running; a coroutine still running at
its deadline is cancelled and answered the same way, and one the node
cancels (``CancelCall``) is answered with a "cancelled" error. A sync
function cannot be interrupted: its node already answered its caller at the
deadline and drops the late result.

Clients may also call it straight over its *lane* (:mod:`mpreg.actors.lanes`),
answered the same way. Per-call state is keyed by connection and call id:
the node's call ids and each lane's are separate sequences.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import inspect
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from mpreg.actors.answers import asked_field, expired, loop_time
from mpreg.actors.chains import ChainRun
from mpreg.actors.definitions import public_methods
from mpreg.actors.environment import TOKEN_ENV, adopt_parent_path, die_with_parent, worker_tls
from mpreg.actors.lanes import Lanes
from mpreg.actors.missing import explain_missing_module
from mpreg.actors.specs import ActorSpec, FunctionsSpec
from mpreg.actors.streams import GENERATORS, Producers, not_a_stream
from mpreg.errors import DeadlineExceeded, NoRouteError, SerializationError, TaskCancelled
from mpreg.protocol.codec import dumps_value, loads_value
from mpreg.protocol.failures import to_info
from mpreg.protocol.handshake import Handshake, PeerIdentity
from mpreg.protocol.messages import (
    Assign,
    Call,
    CallDone,
    CancelCall,
    Shutdown,
    WorkerFailed,
    WorkerReady,
)
from mpreg.protocol.refs import (
    Path,
    pack_bundle,
    resolve_refs,
)
from mpreg.protocol.streams import StreamCredit
from mpreg.tasks import TaskSet
from mpreg.transport.connection import Connection, ConnState, parse_address
from mpreg.transport.dial import connect
from mpreg.transport.loop import install_best_loop
from mpreg.transport.tls import client_context

log = logging.getLogger(__name__)

INBOX_SLICE = 0.0005  # seconds of calls started between two reads of the socket

Asked = tuple[tuple[Path, ...], bool] | None
"""The fields of a call's result its consumers use, and whether the whole is wanted too."""

CallKey = tuple[Connection, int]
"""A call: the connection it came on (the node's or a lane) and its id there."""


class Worker:
    """Serves calls for one spec over one connection to its node (and its lanes)."""

    def __init__(self, endpoint_id: str) -> None:
        self.endpoint_id = endpoint_id
        self.functions: dict[str, Callable[..., Any]] = {}
        self.conn: Connection | None = None
        self.lanes: Lanes | None = None  # its listener, if its node gave it a lane
        self._tasks = TaskSet(f"worker {endpoint_id}")  # the calls of async functions
        self._running: dict[CallKey, asyncio.Task[Any]] = {}  # a call's coroutine's task
        self._cancelled: set[CallKey] = set()  # running calls their caller cancelled
        # Calls not started yet, run one per loop iteration: between two sync
        # calls the loop reads the socket, so a CancelCall for a call still
        # waiting here arrives in time to drop it.
        self._inbox: collections.deque[tuple[Connection, Call]] = collections.deque()
        self._waiting: set[CallKey] = set()  # calls in the inbox
        self._dropped: set[CallKey] = set()  # calls in the inbox their caller cancelled
        # Generators streaming under credit (mpreg.actors.streams): the node's calls only.
        self.streams = Producers()
        self.stopped = asyncio.Event()

    def on_message(self, conn: Connection, message: object) -> None:
        """A message from the node."""
        match message:
            case Call():
                self._take(conn, message)
            case CancelCall(call_id=call_id):
                self._cancel((conn, call_id))
            case StreamCredit():
                self.streams.on_credit(message)
            case Assign():
                self._assign(conn, message)
            case Shutdown():
                if self.lanes is None:
                    self.stopped.set()
                else:  # after the lane calls it took are answered
                    self.lanes.stop(self.stopped.set)
            case _:
                log.warning("worker ignores unexpected message %s", type(message).__name__)

    def on_lane_message(self, conn: Connection, message: object) -> None:
        """A message from a lane: calls and cancels; nothing else may touch the worker."""
        match message:
            case Call():
                self._take(conn, message)
            case CancelCall(call_id=call_id):
                self._cancel((conn, call_id))
            case _:
                log.warning(
                    "worker ignores %s from lane peer=%s", type(message).__name__, conn.peer_address
                )

    def on_lane_closed(self, conn: Connection) -> None:
        """A lane closed (its client fell back to the node): stop its coroutines.

        Its calls still waiting are dropped as they come up (their connection is closed).
        """
        for key, task in list(self._running.items()):
            if key[0] is conn:
                task.cancel()

    def _take(self, conn: Connection, call: Call) -> None:
        if not self._inbox:
            asyncio.get_running_loop().call_soon(self._run_next)
        self._inbox.append((conn, call))
        self._waiting.add((conn, call.call_id))

    def _assign(self, conn: Connection, message: Assign) -> None:
        try:
            spec = loads_value(message.spec, what="worker spec")
            match spec:
                case FunctionsSpec():
                    self.functions = dict(spec.functions)
                    datasets, label = spec.datasets, spec.label
                case ActorSpec():
                    instance = spec.cls(*spec.args, **(spec.kwargs or {}))
                    self.functions = {
                        name: getattr(instance, name) for name in public_methods(spec.cls)
                    }
                    datasets, label = spec.datasets, spec.label
                case _:
                    raise TypeError(f"unknown worker spec {type(spec).__name__}")
        except BaseException as exc:  # SystemExit in __init__ is a failed start too
            conn.send(WorkerFailed(self.endpoint_id, to_info(exc, user_code=True)))
            self.stopped.set()
            return
        ready = WorkerReady(
            endpoint_id=self.endpoint_id,
            functions=tuple(sorted(self.functions)),
            datasets=tuple(datasets),
            label=label,
            pid=os.getpid(),
        )
        if message.lane_host and self.lanes is None:
            self._tasks.spawn(self._open_lane(conn, message, ready))
        else:
            conn.send(ready)

    async def _open_lane(self, conn: Connection, message: Assign, ready: WorkerReady) -> None:
        """Listen for lanes, then say it serves (and where); without a lane if it cannot."""
        lanes = self.lanes = Lanes(
            self.endpoint_id, conn, self.on_lane_message, self.on_lane_closed
        )
        try:
            lane = await lanes.listen(message.lane_host, message.lane_ticket)
        except OSError as exc:  # it serves through its node only
            log.warning("worker %s has no lane on %s: %s", self.endpoint_id, message.lane_host, exc)
            lane = ""
        if conn.state is ConnState.OPEN:
            conn.send(replace(ready, lane=lane))

    def _call(self, conn: Connection, call: Call) -> None:
        credit = (
            self.streams.opened.pop(call.call_id, None)
            if self.streams.opened and conn is self.conn
            else None
        )
        if call.deadline and time.time() >= call.deadline:
            # It waited too long (behind a slow sync call, in a socket): its
            # caller was already told; running it now would only delay the rest.
            conn.send(
                CallDone(
                    call.call_id, None, to_info(expired(call.command or call.fun, call.deadline))
                )
            )
            return
        if call.chain:
            self._chain(conn, call)
            return
        try:
            args, kwargs, *rest = loads_value(call.args, what=f"arguments of {call.command!r}")
            asked: Asked = (rest[0], rest[1]) if rest else None
            if call.deps:
                results = {
                    task_id: loads_value(blob, what="a dependency result")
                    for task_id, blob in call.deps
                }
                args = resolve_refs(args, results)
                kwargs = resolve_refs(kwargs, results)
        except SerializationError as exc:
            explained = explain_missing_module(exc, self.endpoint_id)  # which module, node, fix
            conn.send(CallDone(call.call_id, None, to_info(explained)))
            return
        fn = self.functions.get(call.fun)
        if fn is None:
            error = NoRouteError(f"this worker does not serve {call.fun!r}")
            conn.send(CallDone(call.call_id, None, to_info(error)))
            return
        try:
            result = fn(*args, **kwargs)
        except BaseException as exc:
            # Whatever user code raises, sys.exit() included, is the user's
            # error: reported, never retried, and the worker lives on.
            conn.send(CallDone(call.call_id, None, to_info(exc, user_code=True)))
            return
        if credit is not None:  # a stream: it runs as a task, like a coroutine
            task = self.streams.start(conn, call, result, credit, self._tasks.spawn)
            key = (conn, call.call_id)
            self._running[key] = task
            task.add_done_callback(lambda _: self._forget(key))
        elif inspect.isawaitable(result):
            task = self._tasks.spawn(self._finish(conn, call, result, asked))
            if not task.done():
                self._running[(conn, call.call_id)] = task
        else:
            self._reply(conn, call, result, asked)

    def _chain(self, conn: Connection, call: Call) -> None:
        """A fused chain: its steps run here in turn, answered once (mpreg.actors.chains)."""
        run = ChainRun(conn, call, self.functions, self.endpoint_id)
        key = (conn, call.call_id)
        task = run.start(
            self._tasks.spawn, lambda: key in self._cancelled, lambda: self._forget(key)
        )
        if task is not None and not task.done():
            self._running[key] = task

    def _forget(self, key: CallKey) -> None:
        self._running.pop(key, None)
        self._cancelled.discard(key)

    def _run_next(self) -> None:
        """Start waiting calls, oldest first, for one slice; the rest wait for the next one.

        A slice ends after the call that took it past ``INBOX_SLICE`` seconds:
        the loop then reads the socket, so a cancel for a call still waiting
        here is seen before that call starts (one slice per call would cost
        pipelined throughput a tenth for small calls).
        """
        inbox = self._inbox
        started = time.perf_counter()
        while inbox:
            conn, call = inbox.popleft()
            key = (conn, call.call_id)
            self._waiting.discard(key)
            if conn.state is not ConnState.OPEN:  # a lane that closed: its client moved on
                self._dropped.discard(key)
            elif key in self._dropped:
                self._dropped.discard(key)
                if conn is self.conn:
                    self.streams.opened.pop(call.call_id, None)
                cancelled = TaskCancelled(f"{call.command or call.fun!r} was cancelled")
                conn.send(CallDone(call.call_id, None, to_info(cancelled)))
            else:
                self._call(conn, call)
            if time.perf_counter() - started > INBOX_SLICE:
                break
        if inbox:
            asyncio.get_running_loop().call_soon(self._run_next)

    def _cancel(self, key: CallKey) -> None:
        """The caller gave up on a call: drop it if it waits here, cancel it if it is a coroutine.

        A sync function that already runs cannot be stopped; its answer goes
        out and the caller drops it.
        """
        if key in self._waiting:
            self._dropped.add(key)
            return
        task = self._running.get(key)
        if task is not None:
            self._cancelled.add(key)
            task.cancel()

    async def _finish(self, conn: Connection, call: Call, awaitable: Any, asked: Asked) -> None:
        error: BaseException | None = None
        timeout = asyncio.timeout_at(loop_time(call.deadline) if call.deadline else None)
        try:
            async with timeout:
                result = await awaitable
        except BaseException as exc:  # CancelledError raised by user code too: always answer
            if (conn, call.call_id) in self._cancelled:
                error = TaskCancelled(f"{call.command or call.fun!r} was cancelled")
            elif timeout.expired():
                error = expired(call.command or call.fun, call.deadline)
            else:
                error = exc
        finally:
            self._forget((conn, call.call_id))
        if conn.state is not ConnState.OPEN:
            return
        if error is not None:
            user = not isinstance(error, TaskCancelled | DeadlineExceeded)
            conn.send(CallDone(call.call_id, None, to_info(error, user_code=user)))
        else:
            self._reply(conn, call, result, asked)

    def _reply(self, conn: Connection, call: Call, result: Any, asked: Asked) -> None:
        """Answer with the result, or with a bundle of the fields consumers use (and the whole).

        Fields are taken out here, where the result is, so only they travel
        on when nobody needs the whole result.
        """
        what = f"the result of {call.command or call.fun!r}"
        if type(result) in GENERATORS:  # a generator is streamed, never pickled
            conn.send(CallDone(call.call_id, None, not_a_stream(call, result)))
            return
        try:
            if asked is None:
                blob = dumps_value(result, what=what)
            else:
                paths, whole = asked
                fields = [asked_field(call.command, result, path) for path in paths]
                blob = pack_bundle(dumps_value(result, what=what) if whole else None, fields)
        except SerializationError as exc:
            explained = explain_missing_module(exc, self.endpoint_id)  # which module, node, fix
            conn.send(CallDone(call.call_id, None, to_info(explained)))
            return
        conn.send(CallDone(call.call_id, blob, None))


async def run_worker(address: str, endpoint_id: str, token: str) -> None:
    host, port = parse_address(address)
    worker = Worker(endpoint_id)
    identity = PeerIdentity(role="worker", name=endpoint_id, meta={"endpoint_id": endpoint_id})
    files = worker_tls()
    conn = await connect(
        host,
        port,
        Handshake("connector", token.encode(), identity),
        on_message=worker.on_message,
        ssl=client_context(files) if files.enabled else None,
    )
    worker.conn = conn
    stop: asyncio.Future[object] = asyncio.ensure_future(worker.stopped.wait())
    closed: asyncio.Future[object] = conn.closed  # type: ignore[assignment]
    await asyncio.wait([stop, closed], return_when=asyncio.FIRST_COMPLETED)
    stop.cancel()
    if worker.lanes is not None:
        worker.lanes.close()
    conn.close()
    await worker._tasks.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="mpreg-worker")
    parser.add_argument("--node", required=True)
    parser.add_argument("--endpoint", required=True)
    ns = parser.parse_args(argv)
    die_with_parent()
    # Ctrl-C in a terminal reaches the whole process group; the node decides
    # when its workers stop (it sends Shutdown), not the keyboard.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    adopt_parent_path()
    logging.basicConfig(level=logging.WARNING, format=f"[worker {ns.endpoint}] %(message)s")
    install_best_loop()
    token = os.environ.pop(TOKEN_ENV, "")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_worker(ns.node, ns.endpoint, token))


if __name__ == "__main__":
    main()
