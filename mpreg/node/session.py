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

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

from mpreg.config import DEFAULT_MAX_QUEUED_BYTES_PER_CLIENT, DEFAULT_MAX_QUEUED_PER_CLIENT
from mpreg.errors import NoRouteError, PlanError
from mpreg.node.calls import DoneCallback
from mpreg.node.routing import RoutableTask
from mpreg.node.tracing import TaskClock
from mpreg.protocol.codec import Blob
from mpreg.protocol.failures import to_info
from mpreg.protocol.messages import (
    BatchRejected,
    Cancel,
    ErrorInfo,
    ErrorKind,
    Release,
    SubmitBatch,
    TaskDone,
    TaskSpec,
)
from mpreg.protocol.refs import Bundled, FieldMiss, field_key, unpack_bundle
from mpreg.transport.connection import Connection, ConnState

log = logging.getLogger(__name__)


RouteCheck = Callable[[Iterable[RoutableTask]], None]
"""Raises NoRouteError unless every task has somewhere to run (``RoutingTable.check``)."""


class CallHandle(Protocol):
    """A started call (``dispatch.InFlight``): whether it is answered, and how to stop it."""

    @property
    def done(self) -> bool: ...

    def cancel(self) -> None: ...


class Submit(Protocol):
    """Starts one call in the cluster (``CallDispatcher.submit``)."""

    def __call__(
        self,
        *,
        fun: str,
        datasets: frozenset[str],
        args: Blob,
        deps: tuple[tuple[int, Blob], ...],
        command: str,
        retries: int,
        on_done: DoneCallback,
        deadline: float,
    ) -> CallHandle: ...


@dataclass(eq=False, slots=True)
class TaskState:
    spec: TaskSpec
    waiting: set[int]
    dependents: list[int] = field(default_factory=list)
    pending_dependents: int = 0  # dependents not yet started
    started: bool = False
    finished: bool = False
    result: Blob | None = None  # None: nobody needs the whole result (only fields of it)
    fields: tuple[Bundled, ...] = ()  # the fields of its result consumers use (spec.fields)
    error: ErrorInfo | None = None
    keep: bool = False
    call: CallHandle | None = None  # while it runs
    nbytes: int = 0  # of its arguments, counted against the client's bound until it finishes
    clock: TaskClock | None = None  # a traced batch's task: its timing (mpreg.node.tracing)
    request: int = 0  # the client's batch id, for the log


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
    ) -> None:
        self.conn = conn
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
        error = self._validate(batch)
        if error is not None:
            self._send(BatchRejected(batch.batch_id, error))
            return
        fresh: list[TaskState] = []
        for spec in batch.tasks:
            state = TaskState(spec, waiting=set(), keep=spec.keep, request=batch.batch_id)
            self.tasks[spec.task_id] = state
            fresh.append(state)
        self.unfinished += len(fresh)
        if batch.trace:
            origin = time.perf_counter()
            for state in fresh:
                state.clock = TaskClock(origin)
        for state in fresh:
            state.nbytes = state.spec.args.nbytes
            self.unfinished_bytes += state.nbytes
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
            _log_task(state, "cancelled by its client")
            if state.call is not None:
                state.call.cancel()  # answers _finished, which fails the task
            if not state.finished:
                self._fail(state, _gave_up(state, "cancelled"), report=False)

    def on_release(self, message: Release) -> None:
        for task_id in message.task_ids:
            state = self.tasks.get(task_id)
            if state is not None:
                state.keep = False
                self._maybe_forget(state)

    def _validate(self, batch: SubmitBatch) -> ErrorInfo | None:
        try:
            self._check(batch.tasks)
        except NoRouteError as exc:
            return to_info(exc)
        ids = {t.task_id for t in batch.tasks}
        for spec in batch.tasks:
            if spec.task_id in self.tasks:
                return to_info(PlanError(f"task id {spec.task_id} reused", command=spec.name))
            for dep_id in spec.deps:
                if dep_id not in ids and dep_id not in self.tasks:
                    return to_info(
                        PlanError(
                            f"command {spec.name!r} depends on a result that was "
                            "released or never submitted",
                            command=spec.name,
                        )
                    )
            if spec.uses and not self._uses_valid(spec, batch):
                message = f"command {spec.name!r} uses a field its dependency was not asked for"
                return to_info(PlanError(message, command=spec.name))
        return None

    def _uses_valid(self, spec: TaskSpec, batch: SubmitBatch) -> bool:
        """Every entry of ``spec.uses`` names one of its deps and a field that dep will have."""
        fields = {t.task_id: t.fields for t in batch.tasks}
        for dep_id, index in spec.uses:
            if dep_id not in spec.deps:
                return False
            if index >= 0:
                held = self.tasks.get(dep_id)
                count = fields.get(dep_id) if held is None else held.spec.fields
                if count is None or index >= count:
                    return False
        return True

    def _start(self, state: TaskState) -> None:
        spec = state.spec
        if spec.deadline and time.time() >= spec.deadline:
            self._fail(state, _gave_up(state, "deadline"))
            return
        deps: list[tuple[int, Blob]] = []
        for position, (dep_id, index) in enumerate(spec.uses or [(d, -1) for d in spec.deps]):
            dep = self.tasks[dep_id]
            if index < 0:
                assert dep.result is not None, "a whole result that nobody kept"
                deps.append((dep_id, dep.result))
                continue
            item = dep.fields[index]
            if isinstance(item, FieldMiss):
                self._fail(state, _no_field(state, item))
                return
            deps.append((field_key(position), item))
        state.started = True
        for dep_id in spec.deps:
            dep = self.tasks[dep_id]
            dep.pending_dependents -= 1
            self._maybe_forget(dep)
        if state.clock is not None:
            state.clock.started(spec, deps)
        call = self._submit(
            fun=spec.fun,
            datasets=spec.datasets,
            args=spec.args,
            deps=tuple(deps),
            command=spec.name,
            retries=spec.retries,
            on_done=lambda result, error, where: self._finished(state, result, error, where),
            deadline=spec.deadline,
        )
        if not call.done:
            state.call = call
        if state.clock is not None:
            state.clock.call = call

    def _finished(
        self, state: TaskState, result: Blob | None, error: ErrorInfo | None, where: str
    ) -> None:
        state.call = None
        if state.finished or state.spec.task_id not in self.tasks:
            return  # cancelled, or the session closed
        if state.clock is not None:
            self._send(state.clock.record(state.spec, where, result, error is None))
        if error is not None:
            if not error.command:
                error = replace(error, command=state.spec.name)
            if error.kind != "cancelled":
                _log_task(state, f"failed: {error.exc_type or error.kind}: {error.message}")
            # A cancel the client asked for was already settled by the client.
            self._fail(state, error, where, report=error.kind != "cancelled")
            return
        if state.spec.fields and result is not None:
            try:
                result, state.fields = unpack_bundle(result)
            except ValueError as exc:
                message = f"{state.spec.name!r} answered a malformed result: {exc}"
                self._fail(state, ErrorInfo(kind="protocol", message=message), where)
                return
        state.finished = True
        self._count_finished(state)
        state.result = result
        if state.spec.want_result:
            self._send(TaskDone(state.spec.task_id, result, None, where))
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
        if state.finished and not state.keep and (state.pending_dependents <= 0 or state.error):
            self.tasks.pop(state.spec.task_id, None)

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


def _log_task(state: TaskState, what: str) -> None:
    """Log what became of a task, with its request as the client numbered it (mpreg.host.logs)."""
    extra = {"request_id": state.request, "task_id": state.spec.task_id}
    log.info("task %r %s", state.spec.name, what, extra=extra)


def _no_field(state: TaskState, miss: FieldMiss) -> ErrorInfo:
    """A consumer's argument names a field its dependency's result does not have."""
    return ErrorInfo(
        kind="field",
        message=f"argument {miss.reference!r}: {miss.reason}",
        exc_type="FieldError",
        command=state.spec.name,
        fun=state.spec.fun,
        reference=miss.reference,
    )


def _gave_up(state: TaskState, kind: ErrorKind) -> ErrorInfo:
    what = state.spec.name
    message = f"{what!r} passed its deadline" if kind == "deadline" else f"{what!r} was cancelled"
    return ErrorInfo(kind=kind, message=message, command=state.spec.name, fun=state.spec.fun)
