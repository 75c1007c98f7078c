"""One client's requests on its node: runs each submitted DAG inside the cluster.

The driver's planner has already validated the DAG; here each task starts the
moment its own dependencies finish, intermediate results stay on the node
(opaque Blobs, never unpickled here) and are dropped as soon as no pending
dependent needs them, and only wanted results travel back to the driver.

A task whose result's fields others use (``"s1.rows.0"``) is answered with a
bundle its worker made (:mod:`mpreg.protocol.refs`): the fields, and the whole
result only if needed. The bundle is split here by its manifest, still without
unpickling, and each consumer is handed just the fields it uses.

A task carries its request's deadline to its call; one whose deadline passed
before it could start fails with a deadline error and never runs. The client
may cancel tasks (``Cancel``): queued ones are dropped, running ones cancelled
where they run, and their dependents fail "cancelled". A client that goes
away cancels everything it still had going. Its unfinished tasks and the bytes
of their arguments are counted: past ``max_queued`` tasks or ``max_queued_bytes``
the session asks its node to stop reading from the client (``on_busy(True)``)
until both drain below half.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial

from mpreg.config import (
    DEFAULT_MAX_QUEUED_BYTES_PER_CLIENT,
    DEFAULT_MAX_QUEUED_PER_CLIENT,
    DEFAULT_MAX_STORE_BYTES,
)
from mpreg.errors import PlanError
from mpreg.node.fusion import Places, fuse
from mpreg.node.store import HOLD_FROM_BYTES, Store
from mpreg.node.tasks import (
    RouteCheck,
    Submit,
    TaskState,
    Values,
    dep_values,
    gave_up,
    log_task,
    no_field,
    validate,
)
from mpreg.node.tracing import TaskClock
from mpreg.protocol.codec import Blob
from mpreg.protocol.failures import to_info
from mpreg.protocol.messages import (
    BatchRejected,
    Cancel,
    ErrorInfo,
    Fetch,
    Held,
    Put,
    Release,
    SubmitBatch,
    TaskDone,
    TaskSpec,
)
from mpreg.protocol.refs import FieldMiss, unpack_bundle
from mpreg.transport.connection import Connection, ConnState


class Session:
    """Task table of one client connection.

    It needs two things of its node: ``check`` that a batch can be routed, and
    ``submit`` to start a call; both are given, so it never sees the node.
    """

    def __init__(
        self,
        conn: Connection,
        check: RouteCheck,
        submit: Submit,
        *,
        on_busy: Callable[[bool], None] | None = None,
        max_queued: int = DEFAULT_MAX_QUEUED_PER_CLIENT,
        max_queued_bytes: int = DEFAULT_MAX_QUEUED_BYTES_PER_CLIENT,
        store: Store | None = None,
        values: Values | None = None,
        places: Places | None = None,
    ) -> None:
        self.conn = conn
        # The node's, shared by every session: what their kept results and puts hold.
        self.store = store if store is not None else Store(DEFAULT_MAX_STORE_BYTES)
        self._values = values  # results held on other members (mpreg.node.values)
        self._places = places  # where each step may run: chains go there fused (None: never)
        self._check = check
        self._submit = submit
        self._on_busy = on_busy
        self.max_queued = max_queued
        self.max_queued_bytes = max_queued_bytes
        self.tasks: dict[int, TaskState] = {}
        self.unfinished = 0  # tasks taken and not yet finished: this client's queued work
        self.unfinished_bytes = 0  # the bytes of their arguments, held on this node
        self.busy = False

    def __repr__(self) -> str:
        return (
            f"<Session {self.conn.peer_address} tasks={len(self.tasks)} "
            f"unfinished={self.unfinished}{' busy' if self.busy else ''}>"
        )

    def on_submit(self, batch: SubmitBatch) -> None:
        error = validate(batch, self.tasks, self._check)
        if error is not None:
            self._send(BatchRejected(batch.batch_id, error))
            return
        fresh: list[TaskState] = []
        for spec in batch.tasks:
            state = TaskState(spec, waiting=set(), keep=spec.keep, request=batch.batch_id)
            state.nbytes = spec.args.nbytes
            self.unfinished_bytes += state.nbytes
            self.tasks[spec.task_id] = state
            fresh.append(state)
        self.unfinished += len(fresh)
        if batch.trace:
            origin = time.perf_counter()
            for state in fresh:
                state.clock = TaskClock(origin)
        failed_deps: list[tuple[TaskState, ErrorInfo]] = []
        for state in fresh:
            for dep_id in state.spec.deps:
                dep = self.tasks[dep_id]
                dep.dependents.append(state.spec.task_id)
                dep.pending_dependents += 1
                if dep.error is not None:
                    failed_deps.append((state, dep.error))
                elif not dep.finished:
                    state.waiting.add(dep_id)
        for state, error in failed_deps:
            self._fail(state, error)
        for state in fresh:
            if not state.waiting and not state.finished:
                self._start(state)
        if (
            not self.busy
            and self._on_busy is not None
            and (
                self.unfinished >= self.max_queued or self.unfinished_bytes >= self.max_queued_bytes
            )
        ):
            self.busy = True
            self._on_busy(True)

    def on_cancel(self, message: Cancel) -> None:
        """The client gave up on these tasks; unknown or finished ids are ignored.

        Nothing is reported for them (the client settled them itself); their
        dependents fail "cancelled" and are reported as usual.
        """
        for task_id in message.task_ids:
            state = self.tasks.get(task_id)
            if state is None or state.finished:
                continue
            log_task(state, "cancelled by its client")
            if state.call is not None:
                state.call.cancel()  # answers _finished, which fails the task
            if not state.finished:
                self._fail(state, gave_up(state, "cancelled"), report=False)

    def on_put(self, message: Put) -> None:
        """Hold the client's value as the result of task ``message.task_id`` (a put future)."""
        self._hold(message.task_id, f"put#{message.task_id}", message.value, "")

    def on_kept(self, task_id: int, value: Blob, where: str) -> None:
        """Hold a lane call's big result, made on ``where``, as future ``task_id``'s result."""
        self._hold(task_id, f"lane#{task_id}", value, where)

    def _hold(self, task_id: int, name: str, value: Blob, where: str) -> None:
        if task_id in self.tasks:
            error = to_info(PlanError(f"task id {task_id} reused", command=name))
            self._send(TaskDone(task_id, None, error, where))
            return
        spec = TaskSpec(task_id, name, "", frozenset(), value, (), False, keep=True)
        if not self.store.admit(value.nbytes):
            self._send(TaskDone(task_id, None, self.store.full(name, value.nbytes), where))
            return
        state = TaskState(spec, waiting=set(), finished=True, result=value, keep=True)
        state.stored, state.where = value.nbytes, where
        self.tasks[task_id] = state
        self._send(TaskDone(task_id, None, None, where, held=value.nbytes))

    def on_fetch(self, message: Fetch) -> None:
        """Send the held results the client asks for; an error for those not held here."""
        for task_id in message.task_ids:
            state = self.tasks.get(task_id)
            result = state.result if state is not None and state.finished else None
            if type(result) is Blob:
                self._send(TaskDone(task_id, result, None, state.where))  # type: ignore[union-attr]
                continue
            if type(result) is Held and self._values is not None:
                self._values.fetch(result, partial(self._fetched, task_id, state.where))  # type: ignore[union-attr]
                continue
            error = ErrorInfo(
                kind="unavailable",
                message=f"the result of task {task_id} is not held on this node "
                "(it was released, or made on a node the client has since left)",
            )
            self._send(TaskDone(task_id, None, error))

    def _fetched(self, tid: int, where: str, value: Blob | None, err: ErrorInfo | None) -> None:
        """Send the driver a value fetched from the member that held it."""
        self._send(TaskDone(tid, value, err, where))

    def on_release(self, message: Release) -> None:
        for task_id in message.task_ids:
            state = self.tasks.get(task_id)
            if state is not None:
                state.keep = False
                self._maybe_forget(state)

    def _start(self, state: TaskState) -> None:
        spec = state.spec
        if spec.deadline and time.time() >= spec.deadline:
            self._fail(state, gave_up(state, "deadline"))
            return
        deps = dep_values(state, self.tasks)
        if isinstance(deps, FieldMiss):
            self._fail(state, no_field(state, deps))
            return
        state.started = True
        for dep_id in spec.deps:
            dep = self.tasks[dep_id]
            dep.pending_dependents -= 1
            self._maybe_forget(dep)
        if state.clock is not None:
            state.clock.started(spec, deps)
        chain = fuse(self, state, self._places)  # its followers go with it (mpreg.node.fusion)
        call = self._submit(
            fun=spec.fun,
            datasets=spec.datasets,
            args=spec.args,
            deps=tuple(deps),
            command=spec.name,
            retries=spec.retries,
            on_done=chain.done if chain else partial(self._finished, state),
            deadline=spec.deadline,
            # A big result may stay on the member that makes it, unless it goes
            # straight to the driver (a request's) or is split into fields here.
            hold=(spec.keep or not spec.want_result) and not spec.fields and not chain,
            chain=chain.steps if chain else (),
        )
        if chain:
            chain.sent(call)
            return
        if not call.done:
            state.call = call
        if state.clock is not None:
            state.clock.call = call

    def _finished(
        self, state: TaskState, result: Blob | Held | None, error: ErrorInfo | None, where: str
    ) -> None:
        state.call = None
        self._give_back(state)
        if state.finished or state.spec.task_id not in self.tasks:
            if type(result) is Held and self._values is not None:
                self._values.release(result)  # nobody will ever use it
            return  # cancelled, or the session closed
        if state.clock is not None:
            self._send(state.clock.record(state.spec, where, result, error is None))
        if error is not None:
            if not error.command:
                error = replace(error, command=state.spec.name)
            if error.kind != "cancelled":
                log_task(state, f"failed: {error.exc_type or error.kind}: {error.message}")
            # A cancel the client asked for was already settled by the client.
            self._fail(state, error, where, report=error.kind != "cancelled")
            return
        if state.spec.fields and type(result) is Blob:
            try:
                result, state.fields = unpack_bundle(result)
            except ValueError as exc:
                message = f"{state.spec.name!r} answered a malformed result: {exc}"
                self._fail(state, ErrorInfo(kind="protocol", message=message), where)
                return
        if state.keep and type(result) is Blob:
            if not self.store.admit(result.nbytes):
                self._fail(state, self.store.full(state.spec.name, result.nbytes), where)
                return
            state.stored = result.nbytes
        state.finished = True
        self._count_finished(state)
        state.result, state.where = result, where
        if state.spec.want_result:
            if type(result) is Held or state.stored >= HOLD_FROM_BYTES:
                # A future's big result: it stays in the cluster until fetched.
                size = result.nbytes if type(result) is Held else state.stored
                self._send(TaskDone(state.spec.task_id, None, None, where, held=size))
            else:
                self._send(TaskDone(state.spec.task_id, result, None, where))  # type: ignore[arg-type]
        for dependent_id in state.dependents:
            dependent = self.tasks.get(dependent_id)
            if dependent is None or dependent.finished:
                continue
            dependent.waiting.discard(state.spec.task_id)
            if not dependent.waiting and not dependent.started:
                self._start(dependent)
        self._maybe_forget(state)

    def _fail(
        self, state: TaskState, error: ErrorInfo, where: str = "", *, report: bool = True
    ) -> None:
        """Fail a task and, transitively, every dependent: they never run.

        ``report=False``: the failed task itself is not reported (a cancel).
        """
        stack = [state]
        while stack:
            current = stack.pop()
            if current.finished:
                continue
            current.finished = True
            self._give_back(current)
            self._count_finished(current)
            current.error = error
            # The failed command itself is always reported, sink or not, so
            # the driver can name it; dependents that are sinks are too.
            if (current is state and report) or (current is not state and current.spec.want_result):
                self._send(TaskDone(current.spec.task_id, None, error, where))
            if not current.started:
                # It will never take its dependencies' results: let them go.
                for dep_id in current.spec.deps:
                    dep = self.tasks.get(dep_id)
                    if dep is not None:
                        dep.pending_dependents -= 1
                        self._maybe_forget(dep)
            self._maybe_forget(current)
            for dependent_id in current.dependents:
                dependent = self.tasks.get(dependent_id)
                if dependent is not None and not dependent.started:
                    stack.append(dependent)

    def _maybe_forget(self, state: TaskState) -> None:
        # A failed task is forgotten even with dependents pending: they were
        # failed with it. A kept one (a live future) stays until released.
        if not state.finished or state.keep:
            return
        if state.pending_dependents > 0 and not state.error:
            return
        if self.tasks.pop(state.spec.task_id, None) is None:
            return
        state.forgotten = True
        if state.stored:
            self.store.free(state.stored)
            state.stored = 0
        self._let_go(state)

    def _let_go(self, state: TaskState) -> None:
        """A forgotten task's Held result is freed once no running call still takes it."""
        if state.forgotten and not state.users and type(state.result) is Held:
            held, state.result = state.result, None
            if self._values is not None:
                self._values.release(held)

    def _give_back(self, state: TaskState) -> None:
        """``state``'s call is done with the Held results of its dependencies."""
        borrowed, state.borrowed = state.borrowed, []
        for dep in borrowed:
            dep.users -= 1
            self._let_go(dep)

    def _send(self, message: object) -> None:
        if self.conn.state is ConnState.OPEN:
            self.conn.send(message)

    def _count_finished(self, state: TaskState) -> None:
        self.unfinished -= 1
        self.unfinished_bytes -= state.nbytes
        if (
            self.busy
            and self.unfinished <= self.max_queued // 2
            and self.unfinished_bytes <= self.max_queued_bytes // 2
            and self._on_busy is not None
        ):
            self.busy = False
            self._on_busy(False)

    def close(self) -> None:
        """The client went away: cancel whatever it still had queued or running."""
        tasks, self.tasks = self.tasks, {}
        for state in tasks.values():
            if state.call is not None and not state.finished:
                state.call.cancel()
            if state.stored:  # what it held for the client's futures is let go with it
                self.store.free(state.stored)
                state.stored = 0
            if type(state.result) is Held and self._values is not None:
                self._values.release(state.result)  # and so is what others hold for it
