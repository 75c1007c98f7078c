"""``Client.request``: one DAG of commands out, its results back, on the client's loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from mpreg.commands import Command
from mpreg.driver import progress
from mpreg.driver.futures import Future
from mpreg.driver.lanes import Lanes, one_call
from mpreg.driver.outbox import PendingRequest
from mpreg.driver.requests import DEFAULT_RETRIES, Collector, build_batch, deadline_after
from mpreg.errors import DeadlineExceeded
from mpreg.protocol.messages import TaskSpec


class Requester(progress.RequestHost, Protocol):
    """What a request needs of the :class:`~mpreg.driver.client.Client`."""

    last_where: dict[str, str]
    lanes: Lanes

    def _start(self, future: Future, timeout: float | None) -> None: ...

    @property
    def connected(self) -> bool: ...


async def request(
    client: Requester,
    commands: Sequence[Command],
    *,
    timeout: float | None = None,
    return_all: bool = False,
    retries: int = DEFAULT_RETRIES,
    trace: bool = False,
) -> dict[str, Any]:
    """Run a DAG of commands; return ``{sink name: result}`` (every name with return_all).

    Raises PlanError or NoRouteError before anything runs, RemoteError if a
    function raised, DeadlineExceeded after ``timeout`` seconds,
    ClusterUnavailable if no cluster member can be reached (or the node was
    lost while a request with ``retries=0`` ran). While the client fails
    over to another node the request waits for it. ``trace=True``: the dict has ``.trace``.
    """
    if trace:
        return await progress.traced_request(client, commands, timeout, return_all, retries)
    batch, names = build_batch(
        commands,
        ids=client._task_ids,
        return_all=return_all,
        retries=retries,
        futures=client._future_id,
        deadline=deadline_after(timeout),
    )
    await client._lane_deps_ready()
    if one_call(batch) and client.lanes.route_has_lanes(batch.tasks[0]):
        return await _on_lane(client, batch.tasks[0], names, timeout)
    first = batch.batch_id
    collector = Collector(names)
    waiter = PendingRequest(collector, batch, asyncio.get_running_loop())
    for spec in batch.tasks:
        client._waiting[spec.task_id] = waiter
    client._waiting[-first] = waiter  # rejection comes by batch id
    try:
        try:
            async with asyncio.timeout(timeout):
                await client.link.send(batch)
                waiter.sent = True
                await waiter.done
        except TimeoutError:
            client.cancel_tasks(spec.task_id for spec in batch.tasks)
            where = "" if client.connected else "; the client is reconnecting"
            raise DeadlineExceeded(
                f"request did not finish within {timeout:g}s "
                f"(waiting on {collector.missing_names()}{where})"
            ) from None
        except asyncio.CancelledError:
            # Whoever awaited gave up (a cancelled task, a sync caller's interrupt).
            client.cancel_tasks(spec.task_id for spec in batch.tasks)
            raise
    finally:
        for spec in batch.tasks:
            client._waiting.pop(spec.task_id, None)
        client._waiting.pop(-first, None)
    client.last_where = collector.where
    return collector.ordered_results()


async def _on_lane(
    client: Requester, spec: TaskSpec, names: dict[int, str], timeout: float | None
) -> dict[str, Any]:
    """One call, run as a future whose result is not kept: it goes on a lane (and through
    the node if the lane is lost, as any lane future)."""
    future = Future(client, spec.task_id, spec.name)  # type: ignore[arg-type]
    future.spec = spec
    client._start(future, None)
    try:
        async with asyncio.timeout(timeout):
            value = await future
    except TimeoutError:
        future.cancel()
        raise DeadlineExceeded(
            f"request did not finish within {timeout:g}s (waiting on [{spec.name!r}])"
        ) from None
    except asyncio.CancelledError:
        future.cancel()  # whoever awaited gave up: stop the call
        raise
    client.last_where = {names[spec.task_id]: future.where}
    return {names[spec.task_id]: value}
