"""A future's call, made ready in any thread and started on the client's loop.

``submit`` and ``put`` plan and pickle in the caller's thread
(:func:`prepare_call`, :func:`prepare_put`: nothing there touches the loop's
state) and hand the future to the loop (:class:`Handoff`), which registers it
and sends it. A burst of submits from a script's thread costs one wakeup of
the loop for all of them, not one round trip between threads each: the sync
facade's ``mpreg.submit`` returns at once, like the async client's.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from mpreg.commands import Command
from mpreg.driver.arguments import own_future_id
from mpreg.driver.futures import Future, FutureOwner
from mpreg.driver.planner import plan_request
from mpreg.driver.requests import DEFAULT_RETRIES, TaskIds, deadline_after, task_spec
from mpreg.errors import ClusterUnavailable, SerializationError
from mpreg.protocol.codec import dumps_builtin, dumps_value
from mpreg.protocol.messages import TaskSpec
from mpreg.protocol.refs import ATOMS

PUT_FUN = ""  # the function name of a put's task spec: no function runs

Start = Callable[[Future, float | None], None]  # on the loop: register, send, arm the timer


class Preparer(Protocol):
    """What preparing a future needs of the :class:`~mpreg.driver.client.Client`."""

    _task_ids: TaskIds
    _handoff: Handoff

    def _check_open(self) -> None: ...

    def _start(self, future: Future, timeout: float | None) -> None: ...


def prepare_call(
    client: Preparer,
    fun: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    datasets: Iterable[str],
    retries: int,
    timeout: float | None,
) -> Future:
    """``fun(*args, **kwargs)`` planned and pickled as a future's call, not sent yet.

    Raises PlanError or SerializationError (bad arguments), ClusterUnavailable
    (the client is closed), here in the caller's thread.
    """
    client._check_open()
    owner: FutureOwner = client  # type: ignore[assignment]
    task_id = client._task_ids.take()
    name = f"{fun}#{task_id}"
    spec = _plain_spec(task_id, name, fun, args, kwargs, datasets, retries, timeout)
    if spec is not None:
        future = Future(owner, task_id, name)
        future.spec = spec
        return future
    # A bare str stays one, so the planner refuses it ("iris" is not ["iris"]).
    wanted = datasets if isinstance(datasets, str) else list(datasets)
    deps: list[Future] = []

    def link(value: Any) -> int | None:
        dep_id = own_future_id(owner, value)
        if dep_id is not None:
            deps.append(value)  # kept: re-sent by value if its node goes away
        return dep_id

    plan = plan_request(
        [Command(name, fun, args, wanted, kwargs)], first_task_id=task_id, futures=link
    )
    spec = task_spec(plan.tasks[0], retries, keep=True, deadline=deadline_after(timeout))
    future = Future(owner, task_id, name)
    future.spec = spec
    if deps:
        future.deps = tuple(deps)
    return future


def _plain_spec(
    task_id: int,
    name: str,
    fun: str,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    datasets: Iterable[str],
    retries: int,
    timeout: float | None,
) -> TaskSpec | None:
    """The spec of the commonest call: scalar arguments and a list of dataset names; None
    for anything else, which the planner checks (and words its errors for).

    Such a call can hold no future and no reference, so the planner would
    only copy it: half the driver's cost of a small ``submit``.
    """
    if type(fun) is not str or not fun or type(datasets) not in (list, tuple):
        return None
    for value in args:
        if type(value) not in ATOMS:
            return None
    for value in kwargs.values():
        if type(value) not in ATOMS:
            return None
    for dataset in datasets:
        if type(dataset) is not str or not dataset:
            return None
    try:
        blob = dumps_builtin((args, kwargs), what="the arguments")  # checked above
    except SerializationError as exc:  # too big for a frame
        raise SerializationError(f"command {name!r}: {exc}", command=name) from exc
    return TaskSpec(
        task_id,
        name,
        fun,
        frozenset(datasets),
        blob,
        (),
        True,
        keep=True,
        retries=retries,
        deadline=deadline_after(timeout),
    )


def prepare_put(client: Preparer, value: Any) -> Future:
    """A put of ``value``: pickled here (SerializationError if it cannot be), not sent yet.

    The future keeps ``value`` too: its ``result()`` is local, and after a
    failover its users go with the value inline.
    """
    client._check_open()
    blob = dumps_value(value, what="the value to put")
    task_id = client._task_ids.take()
    name = f"put#{task_id}"
    future = Future(client, task_id, name)  # type: ignore[arg-type]
    future.local = value
    future.spec = TaskSpec(
        task_id, name, PUT_FUN, frozenset(), blob, (), False, keep=True, retries=DEFAULT_RETRIES
    )
    return future


def put(client: Preparer, value: Any, *, threadsafe: bool = False) -> Future:
    """Store ``value`` in the cluster once; see :func:`mpreg.put`. On the client's loop, or
    from any thread with ``threadsafe=True``. The future is done once the node holds it."""
    future = prepare_put(client, value)
    if threadsafe:
        client._handoff.hand(future, None)
    else:
        client._start(future, None)
    return future


class Handoff:
    """Futures prepared in other threads, started on the client's loop: one wakeup per burst."""

    def __init__(self, start: Start) -> None:
        self._start = start
        self._queue: deque[tuple[Future, float | None]] = deque()
        self._scheduled = False
        self.loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<Handoff waiting={len(self._queue)}>"

    def hand(self, future: Future, timeout: float | None) -> None:
        """Start ``future`` on the loop soon; from any thread."""
        self._queue.append((future, timeout))
        if self._scheduled:
            return  # the wakeup already asked for takes this one too
        self._scheduled = True
        loop = self.loop
        try:
            if loop is None:
                raise RuntimeError("no loop")
            loop.call_soon_threadsafe(self._drain)
        except RuntimeError:
            self._queue.clear()
            raise ClusterUnavailable("the client is closed: nothing can be submitted") from None

    def _drain(self) -> None:
        # Cleared first: a future handed while this runs either is taken below
        # or schedules its own wakeup.
        self._scheduled = False
        queue = self._queue
        while queue:
            future, timeout = queue.popleft()
            self._start(future, timeout)
