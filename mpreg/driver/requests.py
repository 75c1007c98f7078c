"""What a request is on the driver side, whatever carries it: a batch out, answers in.

Shared by the async :class:`~mpreg.driver.client.Client` and the blocking sync path
(:mod:`mpreg.driver.sync_client`): both plan the same way, send one
:class:`SubmitBatch` and collect the same :class:`TaskDone` answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from mpreg.commands import Command
from mpreg.driver.planner import PlannedTask, plan_request
from mpreg.errors import SerializationError
from mpreg.protocol.codec import Blob, dumps_value, loads_value
from mpreg.protocol.failures import from_info
from mpreg.protocol.messages import SubmitBatch, TaskDone, TaskSpec

DEFAULT_RETRIES = 3


def deadline_after(timeout: float | None) -> float:
    """The absolute deadline (``time.time()`` seconds) ``timeout`` seconds from now; 0: none.

    Wall-clock time, because it travels to other processes and hosts.
    """
    return 0.0 if timeout is None else time.time() + timeout


def task_spec(task: PlannedTask, retries: int, *, keep: bool, deadline: float = 0.0) -> TaskSpec:
    """A planned task as it travels: its arguments cloudpickled (placeholders and all).

    A task whose result's fields others use carries those paths, and whether
    its whole result is wanted too (a kept one always is), after its arguments.
    """
    payload: tuple[Any, ...] = (task.args, task.kwargs)
    if task.fields:
        payload = (*payload, task.fields, task.whole or keep)
    try:
        args: Blob = dumps_value(payload, what="the arguments")
    except SerializationError as exc:
        raise SerializationError(f"command {task.name!r}: {exc}", command=task.name) from exc
    return TaskSpec(
        task_id=task.task_id,
        name=task.name,
        fun=task.fun,
        datasets=task.datasets,
        args=args,
        deps=task.deps,
        want_result=task.want_result,
        keep=keep,
        retries=retries,
        deadline=deadline,
        fields=len(task.fields),
        uses=task.uses,
    )


class TaskIds:
    """The task ids of one connection's session: unique, handed out in blocks.

    Thread-safe: the sync facade's ``submit`` takes ids in the caller's thread
    while the client's loop takes them for requests.
    """

    __slots__ = ("_lock", "next_id")

    def __init__(self) -> None:
        self.next_id = 1
        self._lock = threading.Lock()

    def take(self, count: int = 1) -> int:
        """Reserve ``count`` consecutive ids; return the first."""
        with self._lock:
            first = self.next_id
            self.next_id += count
        return first


def build_batch(
    commands: Sequence[Command],
    *,
    ids: TaskIds,
    return_all: bool,
    retries: int,
    futures: Callable[[Any], int | None] | None,
    deadline: float = 0.0,
) -> tuple[SubmitBatch, dict[int, str]]:
    """Plan ``commands`` and pickle their arguments: the batch, and wanted id -> name.

    ``deadline`` (absolute, see :func:`deadline_after`) travels with every task.

    Raises PlanError or SerializationError before anything is sent (the ids
    it took are then never used: they only need to be unique).
    """
    first = ids.take(len(commands))  # one task per command
    plan = plan_request(commands, first_task_id=first, return_all=return_all, futures=futures)
    specs = tuple(task_spec(t, retries, keep=False, deadline=deadline) for t in plan.tasks)
    return SubmitBatch(first, specs), plan.result_names()


class Collector:
    """The answers of one request: results by name, where each ran, the first error."""

    __slots__ = ("error", "missing", "names", "results", "where")

    def __init__(self, names: dict[int, str]) -> None:
        self.names = names  # wanted task id -> command name
        self.results: dict[str, Any] = {}
        self.where: dict[str, str] = {}
        self.missing = set(names)
        self.error: BaseException | None = None

    @property
    def finished(self) -> bool:
        return self.error is not None or not self.missing

    def on_done(self, message: TaskDone) -> bool:
        """Take one answer; True once the request is finished (all results, or an error)."""
        if self.finished:
            return True
        if message.error is not None:
            self.error = from_info(message.error, message.where)
            return True
        name = self.names.get(message.task_id)
        if name is None:
            return False
        assert message.result is not None
        try:
            self.results[name] = loads_value(message.result, what=f"the result of {name!r}")
        except SerializationError as exc:
            exc.command = name
            self.error = exc
            return True
        self.where[name] = message.where
        self.missing.discard(message.task_id)
        return not self.missing

    def fail(self, exc: BaseException) -> None:
        if self.error is None:
            self.error = exc

    def missing_names(self) -> list[str]:
        return sorted(self.names[t] for t in self.missing)

    def ordered_results(self) -> dict[str, Any]:
        """Results in command order (task ids follow it), not finishing order."""
        return {name: self.results[name] for _, name in sorted(self.names.items())}
