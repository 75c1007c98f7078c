"""Futures passed as arguments: which task ids they stand for, or why they cannot be used.

The planner turns a Future argument into a dependency on its task: the cluster
feeds its result in where the call runs.
"""

from __future__ import annotations

from typing import Any

from mpreg.driver.futures import Future, FutureOwner
from mpreg.errors import ClusterUnavailable, PlanError, TaskCancelled


def own_future_id(client: FutureOwner, value: Any) -> int | None:
    """The task id of a Future argument of ``client``'s; None for any other value."""
    if not isinstance(value, Future):
        return None
    if value._client is not client:
        raise PlanError(
            f"{value!r} belongs to another connection; pass its result (await it) instead"
        )
    if value.cancelled():
        raise TaskCancelled(f"{value!r} was cancelled: its result will never exist")
    return value.task_id


def request_future_id(client: FutureOwner, value: Any) -> int | None:
    """As :func:`own_future_id`, for a request: its result must be on the node in use."""
    task_id = own_future_id(client, value)
    if task_id is not None and value.done() and value.generation != client.generation:
        raise ClusterUnavailable(
            f"{value!r} finished on a node that has gone away, with its result: "
            "pass its result (future.result()) instead"
        )
    return task_id
