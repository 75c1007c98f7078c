"""The records a client's session keeps per task, its checks of a batch, and its errors.

Apart from :mod:`mpreg.node.session`, which moves them, so that module is the logic alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from mpreg.errors import NoRouteError, PlanError
from mpreg.node.calls import DoneCallback
from mpreg.node.routing import RoutableTask
from mpreg.node.tracing import TaskClock
from mpreg.protocol.codec import Blob
from mpreg.protocol.failures import to_info
from mpreg.protocol.messages import ChainStep, ErrorInfo, ErrorKind, Held, SubmitBatch, TaskSpec
from mpreg.protocol.refs import Bundled, FieldMiss, field_key

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
        deps: tuple[tuple[int, Blob | Held], ...],
        command: str,
        retries: int,
        on_done: DoneCallback,
        deadline: float,
        hold: bool,
        chain: tuple[ChainStep, ...],
    ) -> CallHandle: ...


class Values(Protocol):
    """Results held on other members (``PeerValues``): fetched for the driver, freed."""

    def fetch(self, held: Held, arrived: Callable[[Blob | None, ErrorInfo | None], None]) -> None:
        """Get the value ``held`` describes; ``arrived`` gets it or the error."""
        ...

    def release(self, held: Held) -> None:
        """Nobody here needs ``held`` any more: its holder may let it go."""
        ...


@dataclass(eq=False, slots=True)
class TaskState:
    spec: TaskSpec
    waiting: set[int]
    dependents: list[int] = field(default_factory=list)
    pending_dependents: int = 0  # dependents not yet started
    started: bool = False
    finished: bool = False
    # None: nobody needs the whole result (only fields of it); Held: it stayed on the member
    # that made it (mpreg.node.values)
    result: Blob | Held | None = None
    fields: tuple[Bundled, ...] = ()  # the fields of its result consumers use (spec.fields)
    error: ErrorInfo | None = None
    keep: bool = False
    call: CallHandle | None = None  # while it runs
    nbytes: int = 0  # of its arguments, counted against the client's bound until it finishes
    clock: TaskClock | None = None  # a traced batch's task: its timing (mpreg.node.tracing)
    request: int = 0  # the client's batch id, for the log
    where: str = ""  # the endpoint that made its result
    stored: int = 0  # bytes of its result counted in the node's store (a kept one)
    # A Held result is freed when the task is forgotten and no running call uses it:
    users: int = 0  # started dependents that take its Held result and have not finished
    borrowed: list[TaskState] = field(default_factory=list)  # deps whose Held it takes
    forgotten: bool = False


def log_task(state: TaskState, what: str) -> None:
    """Log what became of a task, with its request as the client numbered it (mpreg.host.logs)."""
    extra = {"request_id": state.request, "task_id": state.spec.task_id}
    log.info("task %r %s", state.spec.name, what, extra=extra)


def dep_values(
    state: TaskState, tasks: dict[int, TaskState]
) -> list[tuple[int, Blob | Held]] | FieldMiss:
    """What ``state``'s call takes of its finished dependencies, keyed as its placeholders say.

    A whole result under its task id, a field under ``field_key(position)``;
    a Held whole result is lent (``users``, ``borrowed``) until the call is
    done with it. The first field a dependency's result lacks instead, if any.
    """
    spec = state.spec
    deps: list[tuple[int, Blob | Held]] = []
    for position, (dep_id, index) in enumerate(spec.uses or [(d, -1) for d in spec.deps]):
        dep = tasks[dep_id]
        if index < 0:
            assert dep.result is not None, "a whole result that nobody kept"
            deps.append((dep_id, dep.result))
            if type(dep.result) is Held:  # freed only once this call is done with it
                dep.users += 1
                state.borrowed.append(dep)
            continue
        item = dep.fields[index]
        if isinstance(item, FieldMiss):
            return item
        deps.append((field_key(position), item))
    return deps


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


def validate(
    batch: SubmitBatch, tasks: dict[int, TaskState], check: RouteCheck
) -> ErrorInfo | None:
    """Why ``batch`` may not run in a session holding ``tasks`` (None: it may)."""
    try:
        check(batch.tasks)
    except NoRouteError as exc:
        return to_info(exc)
    ids = {t.task_id for t in batch.tasks}
    for spec in batch.tasks:
        if spec.task_id in tasks:
            return to_info(PlanError(f"task id {spec.task_id} reused", command=spec.name))
        for dep_id in spec.deps:
            if dep_id not in ids and dep_id not in tasks:
                return to_info(
                    PlanError(
                        f"command {spec.name!r} depends on a result that was "
                        "released or never submitted",
                        command=spec.name,
                    )
                )
        if spec.uses and not _uses_valid(spec, batch, tasks):
            message = f"command {spec.name!r} uses a field its dependency was not asked for"
            return to_info(PlanError(message, command=spec.name))
    return None


def _uses_valid(spec: TaskSpec, batch: SubmitBatch, tasks: dict[int, TaskState]) -> bool:
    """Every entry of ``spec.uses`` names one of its deps and a field that dep will have."""
    fields = {t.task_id: t.fields for t in batch.tasks}
    for dep_id, index in spec.uses:
        if dep_id not in spec.deps:
            return False
        if index >= 0:
            held = tasks.get(dep_id)
            count = fields.get(dep_id) if held is None else held.spec.fields
            if count is None or index >= count:
                return False
    return True
