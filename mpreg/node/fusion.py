"""Fused chains: a request's steps that can only run in one place go there as one call.

When a task of a request starts and its one dependent can run on exactly the
processes it can run on (same function set and datasets served: one actor,
say), the session sends both, and the dependent's own one dependent if the
same holds, and so on, as one call (:class:`~mpreg.protocol.chains.ChainStep`).
The process runs the steps in turn and hands each result to the next
in-process (:mod:`mpreg.actors.chains`): one round trip to it instead of one
per step, and no intermediate result pickled.

A step joins the chain only if it belongs to the same request, is no future
(``keep``: a future may be fetched or cancelled alone), takes results of
chain steps only, and has the chain's deadline and retries. Every step but the
last has no dependent outside the chain, so fusing never delays another task;
the last step's dependents start when the chain answers, as they would.

The answer carries the results of the last step and of the steps the driver
wants (``return_all``). The chain is retried as a unit when its process dies,
charged one retry as one call is. An error names the step that failed; the
steps after it fail with it, as dependents of a failed task do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Protocol

from mpreg.node.routing import RoutingTable
from mpreg.node.tasks import CallHandle, TaskState
from mpreg.protocol.chains import unpack_chain_answer
from mpreg.protocol.codec import Blob
from mpreg.protocol.messages import ChainStep, ErrorInfo, Held

Places = Callable[[str, frozenset[str]], frozenset[str]]
"""The ids of the endpoints that can run (fun, datasets), restarting ones included."""

# Errors the node gives a call as a whole (not a step's own): they say the chain was fused.
_WHOLE_CALL = frozenset({"deadline", "cancelled", "actor-died", "no-route", "protocol"})


def places_in(routes: RoutingTable) -> Places:
    """Where ``routes`` can run each (fun, datasets)."""

    def places(fun: str, datasets: frozenset[str]) -> frozenset[str]:
        return frozenset(ep.endpoint_id for ep in routes.candidates(fun, datasets))

    return places


class ChainHost(Protocol):
    """What a chain needs of its session (:class:`~mpreg.node.session.Session`)."""

    tasks: dict[int, TaskState]

    def _finished(
        self, state: TaskState, result: Blob | Held | None, error: ErrorInfo | None, where: str
    ) -> None: ...

    def _fail(
        self, state: TaskState, error: ErrorInfo, where: str = "", *, report: bool = True
    ) -> None: ...


def fuse(host: ChainHost, head: TaskState, places: Places | None) -> Chain | None:
    """The chain ``head`` starts, set running in the session; None if it runs alone.

    Called as ``head`` starts (its dependencies are done), before its call is
    submitted: its followers are marked started, so the session never starts
    them itself, and they no longer hold their chain dependencies' results.
    """
    if places is None or len(head.dependents) != 1 or head.spec.keep:
        return None
    members = [head]
    ids = {head.spec.task_id}
    where: frozenset[str] = frozenset()
    last = head
    while len(last.dependents) == 1:
        step = host.tasks.get(last.dependents[0])
        if step is None or not _may_follow(step, head, ids):
            break
        where = where or places(head.spec.fun, head.spec.datasets)
        if not where or places(step.spec.fun, step.spec.datasets) != where:
            break
        members.append(step)
        ids.add(step.spec.task_id)
        last = step
    if len(members) == 1:
        return None
    for member in members[1:]:
        member.started = True
        for dep_id in member.spec.deps:
            host.tasks[dep_id].pending_dependents -= 1  # a chain step: never forgotten yet
        if member.clock is not None:
            member.clock.started(member.spec, [])
    return Chain(host, members)


def _may_follow(step: TaskState, head: TaskState, ids: set[int]) -> bool:
    spec, first = step.spec, head.spec
    return (
        step.request == head.request
        and not spec.keep
        and not step.started
        and not step.finished
        and set(spec.deps) <= ids
        and spec.deadline == first.deadline
        and spec.retries == first.retries
    )


class Chain:
    """A fused chain of a session's tasks: the steps its call carries; its answer, taken apart."""

    def __init__(self, host: ChainHost, members: list[TaskState]) -> None:
        self.host = host
        self.members = members
        last = len(members) - 1
        self.steps = tuple(
            ChainStep(
                task_id=m.spec.task_id,
                fun=m.spec.fun,
                command=m.spec.name,
                args=None if i == 0 else m.spec.args,
                export=i == last or m.spec.want_result,
            )
            for i, m in enumerate(members)
        )
        self.call: CallHandle | None = None

    def __repr__(self) -> str:
        return f"<Chain {' -> '.join(repr(m.spec.name) for m in self.members)}>"

    def sent(self, call: CallHandle) -> None:
        """The chain's call was submitted: cancelling any of its steps cancels it."""
        if call.done:
            return  # answered already (expired, unroutable, too big)
        self.call = call
        for member in self.members:
            member.call = call
            if member.clock is not None:
                member.clock.call = call

    def done(self, result: Blob | Held | None, error: ErrorInfo | None, where: str) -> None:
        """The chain's answer: finish the steps that ran, fail the one that failed and the rest."""
        took: tuple[float, ...] = ()
        results: tuple[Blob | None, ...] = ()
        if type(result) is Blob:
            try:
                took, results = unpack_chain_answer(result)
            except ValueError as exc:
                error = ErrorInfo(kind="protocol", message=f"a malformed chain answer: {exc}")
        members = self.members
        if error is None and len(took) != len(members):
            message = f"the chain answer has {len(took)} of its {len(members)} steps"
            error = ErrorInfo(kind="protocol", message=message)
        if error is not None and not took and error.kind in _WHOLE_CALL:
            names = ", ".join(repr(m.spec.name) for m in members[1:])
            error = replace(error, message=f"{error.message} (with {names} fused into its call)")
        self._time(took)
        host = self.host
        for i, member in enumerate(members):
            if i < len(took):
                host._finished(member, results[i], None, where)
                continue
            assert error is not None
            host._finished(member, None, error, where)
            for later in members[i + 1 :]:
                # Never run, as a failed task's dependents: only sinks are reported.
                if not later.finished and later.spec.task_id in host.tasks:
                    host._fail(later, error, where, report=later.spec.want_result)
            return

    def _time(self, took: tuple[float, ...]) -> None:
        """A traced chain: each step's span inside the call, from what the process measured.

        The time the call took beyond its steps' (transfer, unpickling) is
        split evenly before the first step and after the last one.
        """
        sent = float(getattr(self.call, "started", 0.0) or 0.0)
        if not sent or self.members[0].clock is None:
            return
        now = time.perf_counter()
        at = sent + max(0.0, now - sent - sum(took)) / 2
        for i, member in enumerate(self.members):
            clock = member.clock
            if clock is None:
                continue
            if i >= len(took):
                clock.span = (at, now)  # the step that failed, or never ran
                continue
            if i:
                clock.ready = at  # the step before it ended here, in its process
            clock.span = (at, at + took[i])
            at += took[i]


__all__ = ["Chain", "Places", "fuse", "places_in"]
