"""The records a client's session keeps per task, and the errors it answers tasks with.

Apart from :mod:`mpreg.node.session`, which moves them, so that module is the logic alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from mpreg.node.calls import DoneCallback
from mpreg.node.routing import RoutableTask
from mpreg.node.tracing import TaskClock
from mpreg.protocol.codec import Blob
from mpreg.protocol.messages import ErrorInfo, ErrorKind, TaskSpec
from mpreg.protocol.refs import Bundled, FieldMiss

log = logging.getLogger("mpreg.node.session")


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
    where: str = ""  # the endpoint that made its result
    stored: int = 0  # bytes of its result counted in the node's store (a kept one)


def log_task(state: TaskState, what: str) -> None:
    """Log what became of a task, with its request as the client numbered it (mpreg.host.logs)."""
    extra = {"request_id": state.request, "task_id": state.spec.task_id}
    log.info("task %r %s", state.spec.name, what, extra=extra)


def no_field(state: TaskState, miss: FieldMiss) -> ErrorInfo:
    """A consumer's argument names a field its dependency's result does not have."""
    return ErrorInfo(
        kind="field",
        message=f"argument {miss.reference!r}: {miss.reason}",
        exc_type="FieldError",
        command=state.spec.name,
        fun=state.spec.fun,
        reference=miss.reference,
    )


def gave_up(state: TaskState, kind: ErrorKind) -> ErrorInfo:
    what = state.spec.name
    message = f"{what!r} passed its deadline" if kind == "deadline" else f"{what!r} was cancelled"
    return ErrorInfo(kind=kind, message=message, command=state.spec.name, fun=state.spec.fun)
