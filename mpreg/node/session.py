"""One client's requests on its node: runs each submitted DAG inside the cluster.

The driver's planner has already validated the DAG; here each task starts the
moment its own dependencies finish, intermediate results stay on the node
(opaque Blobs, never unpickled here) and are dropped as soon as no pending
dependent needs them, and only wanted results travel back to the driver.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

from mpreg.errors import NoRouteError, PlanError
from mpreg.node.dispatch import DoneCallback
from mpreg.node.routing import RoutableTask
from mpreg.protocol.codec import Blob
from mpreg.protocol.failures import to_info
from mpreg.protocol.messages import (
    BatchRejected,
    ErrorInfo,
    Release,
    SubmitBatch,
    TaskDone,
    TaskSpec,
)
from mpreg.transport.connection import Connection, ConnState

log = logging.getLogger(__name__)


RouteCheck = Callable[[Iterable[RoutableTask]], None]
"""Raises NoRouteError unless every task has somewhere to run (``RoutingTable.check``)."""


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
    ) -> None: ...


@dataclass(eq=False)
class TaskState:
    spec: TaskSpec
    waiting: set[int]
    dependents: list[int] = field(default_factory=list)
    pending_dependents: int = 0  # dependents not yet started
    started: bool = False
    finished: bool = False
    result: Blob | None = None
    error: ErrorInfo | None = None
    keep: bool = False


class Session:
    """Task table of one client connection.

    It needs two things of its node: ``check`` that a batch can be routed, and
    ``submit`` to start a call; both are given, so it never sees the node.
    """

    def __init__(self, conn: Connection, check: RouteCheck, submit: Submit) -> None:
        self.conn = conn
        self._check = check
        self._submit = submit
        self.tasks: dict[int, TaskState] = {}

    def __repr__(self) -> str:
        return f"<Session {self.conn.peer_address} tasks={len(self.tasks)}>"

    def on_submit(self, batch: SubmitBatch) -> None:
        error = self._validate(batch)
        if error is not None:
            self._send(BatchRejected(batch.batch_id, error))
            return
        fresh: list[TaskState] = []
        for spec in batch.tasks:
            state = TaskState(spec, waiting=set(), keep=spec.keep)
            self.tasks[spec.task_id] = state
            fresh.append(state)
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
        return None

    def _start(self, state: TaskState) -> None:
        spec = state.spec
        state.started = True
        deps: list[tuple[int, Blob]] = []
        for dep_id in spec.deps:
            dep = self.tasks[dep_id]
            assert dep.result is not None
            deps.append((dep_id, dep.result))
            dep.pending_dependents -= 1
            self._maybe_forget(dep)
        self._submit(
            fun=spec.fun,
            datasets=spec.datasets,
            args=spec.args,
            deps=tuple(deps),
            command=spec.name,
            retries=spec.retries,
            on_done=lambda result, error, where: self._finished(state, result, error, where),
        )

    def _finished(
        self, state: TaskState, result: Blob | None, error: ErrorInfo | None, where: str
    ) -> None:
        if state.spec.task_id not in self.tasks:
            return  # session closed
        if error is not None:
            if not error.command:
                error = replace(error, command=state.spec.name)
            self._fail(state, error, where)
            return
        state.finished = True
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

    def _fail(self, state: TaskState, error: ErrorInfo, where: str = "") -> None:
        """Fail a task and, transitively, every dependent: they never run."""
        stack = [state]
        while stack:
            current = stack.pop()
            if current.finished:
                continue
            current.finished = True
            current.error = error
            # The failed command itself is always reported, sink or not, so
            # the driver can name it; dependents that are sinks are too.
            if current is state or current.spec.want_result:
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

    def close(self) -> None:
        self.tasks.clear()
