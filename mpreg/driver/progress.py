"""A request that reports as it goes: each command as it finishes, its sinks, its trace.

``await client.submit_request(commands)`` sends a traced batch
(``SubmitBatch.trace``: the node reports every task with a ``TaskTrace``, sinks
with their ``TaskDone`` as usual) and returns an :class:`AsyncRequestHandle`
at once. ``client.request(..., trace=True)`` is the same, awaited; its result
dict carries the :class:`~mpreg.driver.trace.Trace`. Only traced requests pay
for any of this.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from dataclasses import replace
from typing import Any, Protocol

from mpreg.commands import Command
from mpreg.driver.link import NodeLink
from mpreg.driver.outbox import PendingRequest
from mpreg.driver.requests import (
    DEFAULT_RETRIES,
    Collector,
    TaskIds,
    build_batch,
    deadline_after,
)
from mpreg.driver.trace import Trace, build_trace, places_of
from mpreg.errors import DeadlineExceeded, MpregError, TaskCancelled
from mpreg.protocol.messages import SubmitBatch, TaskDone, TaskTrace
from mpreg.status import ClusterStatus

PLACES_TIMEOUT = 5.0  # asking the cluster which node and pid an endpoint is


class RequestHost(Protocol):
    """What a handle needs of its :class:`~mpreg.driver.client.Client`."""

    _task_ids: TaskIds
    _waiting: dict[int, Any]

    def _future_id(self, value: Any) -> int | None: ...

    async def _lane_deps_ready(self) -> None: ...

    def cancel_tasks(self, task_ids: Iterable[int]) -> None: ...

    async def status(self, *, timeout: float | None = ...) -> ClusterStatus: ...

    @property
    def link(self) -> NodeLink: ...


class TracedResults(dict[str, Any]):
    """A request's results (``{name: value}``, as ever) with its :class:`Trace` as ``.trace``."""

    trace: Trace

    def __init__(self, results: dict[str, Any], trace: Trace) -> None:
        super().__init__(results)
        self.trace = trace


class TracedRequest(PendingRequest):
    """A PendingRequest that also keeps every task's TaskTrace and the order they finished."""

    __slots__ = ("changed", "ended", "finished", "records", "sent_at", "task_names")

    def __init__(
        self, collector: Collector, batch: SubmitBatch, loop: asyncio.AbstractEventLoop
    ) -> None:
        super().__init__(collector, batch, loop)
        self.task_names = {spec.task_id: spec.name for spec in batch.tasks}
        self.records: dict[int, TaskTrace] = {}
        self.finished: list[str] = []  # command names, in the order they finished
        self.changed = asyncio.Event()
        self.sent_at = 0.0
        self.ended = 0.0
        self.done.add_done_callback(self._on_settled)

    def on_trace(self, message: TaskTrace) -> None:
        self.records[message.task_id] = message
        # A wanted result counts as finished once its value is here (its TaskDone follows).
        if message.ok and message.task_id not in self.collector.names:
            self._finish(message.task_id)

    def on_done(self, message: TaskDone) -> None:
        super().on_done(message)
        name = self.collector.names.get(message.task_id)
        if message.error is None and name is not None and name in self.collector.results:
            self._finish(message.task_id)
        self.changed.set()

    def _finish(self, task_id: int) -> None:
        name = self.task_names.get(task_id)
        if name is not None and name not in self.finished:
            self.finished.append(name)
            self.changed.set()

    def _on_settled(self, done: asyncio.Future[None]) -> None:
        self.ended = time.perf_counter()
        if not done.cancelled():
            done.exception()  # retrieved here: the handle raises it where it is asked for
        self.changed.set()


_places: weakref.WeakKeyDictionary[Any, dict[str, tuple[str, int]]] = weakref.WeakKeyDictionary()


class AsyncRequestHandle:
    """One request in flight, submitted whole; use it on the client's loop.

    ``async for name, value in handle.as_completed()`` yields each command as
    it finishes (``value`` is its result if the request returns it: sinks,
    every command with ``return_all``; else None), then raises the request's
    error if it failed. ``await handle.result()`` gives the sinks,
    ``await handle.trace()`` the Trace; ``done()`` and ``cancel()`` as on a future.
    """

    def __init__(self, host: RequestHost, waiter: TracedRequest) -> None:
        self._host = host
        self._waiter = waiter
        self._trace: Trace | None = None

    def __repr__(self) -> str:
        w = self._waiter
        return f"<mpreg.RequestHandle {len(w.finished)}/{len(w.task_names)} finished>"

    @property
    def commands(self) -> list[str]:
        """Every command name of the request, in order."""
        return list(self._waiter.task_names.values())

    def done(self) -> bool:
        return self._waiter.done.done()

    def finished(self) -> list[str]:
        """The commands finished so far, in the order they finished."""
        return list(self._waiter.finished)

    def cancel(self) -> bool:
        """Cancel every unfinished command; False if the request had already finished."""
        if self.done():
            return False
        self._host.cancel_tasks(self._waiter.task_names)
        self._waiter.fail(TaskCancelled("the request was cancelled"))
        return True

    async def result(self, timeout: float | None = None) -> TracedResults:
        """``{sink name: result}`` with ``.trace``; raises the request's error.

        DeadlineExceeded if it has not finished within ``timeout`` (it keeps running).
        """
        waiter = self._waiter
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(waiter.done)
        except TimeoutError:
            raise DeadlineExceeded(
                f"request not finished within {timeout:g}s "
                f"(waiting on {waiter.collector.missing_names()})"
            ) from None
        return TracedResults(waiter.collector.ordered_results(), await self.trace())

    async def trace(self) -> Trace:
        """The trace of the commands that have finished (all of them once ``done()``)."""
        if self._trace is not None:
            return self._trace
        waiter = self._waiter
        places = _places.setdefault(self._host, {})
        if any(r.where and r.where not in places for r in waiter.records.values()):
            # If the cluster does not say, nodes and pids stay unknown: endpoint ids say enough.
            with contextlib.suppress(MpregError):
                places.update(places_of(await self._host.status(timeout=PLACES_TIMEOUT)))
        end = waiter.ended or time.perf_counter()
        trace = build_trace(waiter.batch, waiter.records, places, end - waiter.sent_at)
        if self.done():
            self._trace = trace
        return trace

    async def next_finished(self, index: int) -> tuple[str, Any] | None:
        """The ``index``-th command to finish, waiting for it; None once there is none."""
        waiter = self._waiter
        while True:
            if index < len(waiter.finished):
                name = waiter.finished[index]
                return name, waiter.collector.results.get(name)
            if waiter.done.done():
                error = waiter.collector.error
                if error is not None:
                    raise error
                return None
            waiter.changed.clear()
            await waiter.changed.wait()

    async def as_completed(self) -> AsyncIterator[tuple[str, Any]]:
        index = 0
        while (item := await self.next_finished(index)) is not None:
            yield item
            index += 1


async def submit_request(
    host: RequestHost,
    commands: Sequence[Command],
    *,
    timeout: float | None = None,
    return_all: bool = False,
    retries: int = DEFAULT_RETRIES,
) -> AsyncRequestHandle:
    """Send a DAG of commands; return, once it is out, a handle that reports its progress.

    Arguments as for ``Client.request``: ``timeout`` is the request's
    deadline (the cluster fails what has not finished by then).
    """
    batch, names = build_batch(
        commands,
        ids=host._task_ids,
        return_all=return_all,
        retries=retries,
        futures=host._future_id,
        deadline=deadline_after(timeout),
    )
    await host._lane_deps_ready()
    batch = replace(batch, trace=True)
    waiter = TracedRequest(Collector(names), batch, asyncio.get_running_loop())
    waiting = host._waiting
    keys = [*(spec.task_id for spec in batch.tasks), -batch.batch_id]
    for key in keys:
        waiting[key] = waiter
    waiter.done.add_done_callback(_forget(waiting, keys))
    waiter.sent_at = time.perf_counter()
    try:
        await host.link.send(batch)
    except BaseException:
        _forget(waiting, keys)(waiter.done)
        raise
    waiter.sent = True
    return AsyncRequestHandle(host, waiter)


def _forget(waiting: dict[int, Any], keys: list[int]) -> Callable[[object], None]:
    def forget(_: object) -> None:
        for key in keys:
            waiting.pop(key, None)

    return forget


def on_trace(waiter: object, message: TaskTrace) -> None:
    """A TaskTrace for the client: for its traced request, if that still waits."""
    if isinstance(waiter, TracedRequest):
        waiter.on_trace(message)


async def traced_request(
    host: RequestHost,
    commands: Sequence[Command],
    timeout: float | None,
    return_all: bool,
    retries: int,
) -> TracedResults:
    """``Client.request(..., trace=True)``: as a plain request (cancelled on timeout or when
    its caller gives up), with the trace attached."""
    handle = await submit_request(
        host, commands, timeout=timeout, return_all=return_all, retries=retries
    )
    try:
        return await handle.result(timeout)
    except (DeadlineExceeded, asyncio.CancelledError):
        handle.cancel()
        raise
