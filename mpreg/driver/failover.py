"""When the driver's node goes away: whom to dial next, and what may be sent again.

The node tells its clients the cluster's members (``MembersChanged``); a
:class:`Members` keeps the latest list and the address the driver was given.
When the connection is lost without the user closing it, the client dials
the members one after the other (:func:`dial_first`) until one answers or
``reconnect_timeout`` passes. What the lost node took with it is sorted at
the loss (:func:`hold_for_resend`) and sent to the new node when that is
allowed; argument futures whose results stayed on the lost node go by value
(:func:`spec_to_send`).

A task whose results never arrived may run again only if its retry budget
allows it: the re-send uses one of its ``retries``, and a task with
``retries=0`` (must not repeat) is never re-sent.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import replace
from typing import Any, TypeVar

from mpreg.driver.futures import Future
from mpreg.driver.outbox import PendingRequest
from mpreg.errors import AuthenticationError, ClusterUnavailable, ProtocolError
from mpreg.protocol.codec import dumps_value, loads_value
from mpreg.protocol.messages import SubmitBatch, TaskSpec
from mpreg.protocol.refs import DepRef, rewrite

log = logging.getLogger(__name__)

RECONNECT_TIMEOUT = 30.0  # the default: how long the driver looks for another member
ATTEMPT_TIMEOUT = 2.0  # one dial: a member that does not answer within this is skipped
FIRST_PAUSE, MAX_PAUSE = 0.05, 1.0  # between rounds over every member, doubling

C = TypeVar("C")


class Members:
    """The addresses a driver may connect to: the latest its node announced, and its first."""

    def __init__(self, initial: str) -> None:
        self.initial = initial
        self.announced: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"<Members initial={self.initial} announced={list(self.announced)}>"

    @property
    def addresses(self) -> tuple[str, ...]:
        """Every known member, the address the driver was given first."""
        return tuple(dict.fromkeys((self.initial, *self.announced)))

    def update(self, announced: Iterable[str]) -> None:
        self.announced = tuple(a for a in announced if a)

    def order_after(self, lost: str) -> list[str]:
        """Whom to try after losing ``lost``: the announced members, the first address, ``lost``.

        The node's own list comes first (those were alive a moment ago); the
        lost node comes last, in case it is back (a restart, a cut link).
        """
        order = dict.fromkeys((*self.announced, self.initial))
        order.pop(lost, None)
        return [*order, lost]


async def dial_first(
    order: Callable[[], list[str]],
    dial: Callable[[str, float], Awaitable[C]],
    *,
    timeout: float,
    attempt_timeout: float = ATTEMPT_TIMEOUT,
) -> tuple[C, str]:
    """Dial the addresses of ``order()`` in turn, round after round; the first that answers.

    ``order`` is asked again each round (the member list may change meanwhile);
    each dial gets at most ``attempt_timeout`` seconds. Raises
    ClusterUnavailable naming every address tried once ``timeout`` seconds
    have passed without an answer.
    """
    deadline = time.monotonic() + timeout
    tried: dict[str, str] = {}  # address -> why it failed, last time
    pause = FIRST_PAUSE
    while True:
        for address in order():
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                return await dial(address, min(attempt_timeout, left)), address
            except (ClusterUnavailable, AuthenticationError, ProtocolError, ValueError) as exc:
                tried[address] = str(exc)
                log.debug("reconnect: %s did not answer: %s", address, exc)
        left = deadline - time.monotonic()
        if left <= 0:
            break
        await asyncio.sleep(min(pause, left))  # ok-sleep: between rounds, bounded by the deadline
        pause = min(pause * 2, MAX_PAUSE)
    raise ClusterUnavailable(
        f"no cluster member answered within {timeout:g}s (tried {', '.join(tried) or 'nothing'})"
    )


def resend_batch(batch: SubmitBatch) -> tuple[SubmitBatch | None, str]:
    """``batch`` as it may be re-sent after its node was lost while it ran, or why it may not.

    Each task uses one retry for the re-send. None, with the reason, if a
    task must not repeat (``retries=0``) or the batch uses results of futures
    (they were held on the lost node).
    """
    first = batch.batch_id
    specs: list[TaskSpec] = []
    for spec in batch.tasks:
        if spec.retries <= 0:
            return None, f"{spec.name!r} must not repeat (retries=0)"
        if any(dep < first for dep in spec.deps):
            return None, f"{spec.name!r} uses the result of a future held on that node"
        specs.append(replace(spec, retries=spec.retries - 1))
    return replace(batch, tasks=tuple(specs)), ""  # a traced batch stays traced


def inline_results(spec: TaskSpec, results: Mapping[int, Any]) -> TaskSpec:
    """``spec`` with the dependencies in ``results`` passed as values instead of references.

    For a future whose argument futures finished on a node that is gone: their
    values are here, in the driver, so the task no longer needs that node.
    Raises SerializationError if a value cannot be pickled.
    """

    def leaf(item: Any) -> Any:
        if type(item) is DepRef and item.task_id in results:
            return results[item.task_id]
        return item

    args = loads_value(spec.args, what=f"the arguments of {spec.name!r}")
    args = rewrite(args, leaf)
    return replace(
        spec,
        args=dumps_value(args, what=f"the arguments of {spec.name!r}"),
        deps=tuple(dep for dep in spec.deps if dep not in results),
    )


def hold_for_resend(
    waiters: Iterable[PendingRequest | Future], lost: str
) -> tuple[list[PendingRequest], list[tuple[Future | PendingRequest, ClusterUnavailable]]]:
    """What the lost node took with it: the requests to re-send, and the calls that fail.

    A request or future that was sent and may repeat is kept, with one retry
    used: a request's batch is replaced by the one to re-send; a future is
    marked unsent (``generation`` 0) and goes out with the calls submitted
    while reconnecting. A request not sent yet is left alone (its
    ``request()`` sends it once reconnected). A future whose argument future
    was unfinished on the lost node fails too: that result is gone.
    """
    resend: list[PendingRequest] = []
    failed: list[tuple[Future | PendingRequest, ClusterUnavailable]] = []
    for waiter in waiters:
        if isinstance(waiter, PendingRequest):
            if not waiter.sent or waiter.done.done():
                continue
            batch, why = resend_batch(waiter.batch)
            if batch is None:
                failed.append((waiter, _not_resent(lost, "the request", why)))
            else:
                waiter.batch = batch
                resend.append(waiter)
        elif waiter.lane is not None:
            continue  # on a lane, or waiting for lane futures: the lanes' business
        elif waiter.spec is not None and waiter.generation and not waiter.done():
            running = [d.command for d in waiter.deps if not d.done()]
            if waiter.spec.retries <= 0:
                why = "it must not repeat (retries=0)"
            elif running:
                why = f"its argument {running[0]} was unfinished there too"
            else:
                waiter.spec = replace(waiter.spec, retries=waiter.spec.retries - 1)
                waiter.generation = 0  # to be sent again
                continue
            failed.append((waiter, _not_resent(lost, waiter.command, why)))
    return resend, failed


def spec_to_send(future: Future, generation: int) -> TaskSpec:
    """The call of ``future`` as it goes to the node of ``generation``.

    Argument futures held on another node (one that is gone) go by value if
    they finished with one; raises their error if they failed, TaskCancelled if
    cancelled, ClusterUnavailable if they were lost unfinished.
    """
    spec = future.spec
    assert spec is not None
    held = [d for d in future.deps if d.generation != generation]
    if not held:
        return spec
    for dep in held:
        if dep.cancelled():
            raise dep._cancelled_error()
        if not dep.done():
            raise ClusterUnavailable(
                f"{future.command}: its argument {dep.command} was lost with its node unfinished"
            )
        if dep._error is not None:
            raise dep._error
        if dep._is_held():
            raise ClusterUnavailable(
                f"{future.command}: the result of its argument {dep.command} was held on "
                "a node that has gone away"
            )
    future.deps = tuple(d for d in future.deps if d not in held)
    future.spec = inline_results(spec, {dep.task_id: dep._value for dep in held})
    return future.spec


def _not_resent(lost: str, what: str, why: str) -> ClusterUnavailable:
    return ClusterUnavailable(
        f"lost node {lost} while {what} ran; it was not re-sent to another node because {why}"
    )
