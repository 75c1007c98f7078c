"""A fused chain, run in the worker: each step's result handed to the next in-process.

The node sends a chain of one request's steps that can only run here as one
``Call`` (:mod:`mpreg.protocol.chains`). :class:`ChainRun` runs the steps in
turn, as the worker runs a lone call: sync functions inline, and once a step
returns a coroutine the rest of the chain runs as a task (cancelled by the
node's ``CancelCall``, or at the deadline). A step's result is never pickled
to reach the next step; only the results marked ``export`` are, for the
answer. It answers once, with a chain answer; an error names the step that
failed, and the answer still carries what the steps before it made.

Every step checks the call's deadline before it starts, as a lone call does.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Coroutine
from dataclasses import replace
from typing import Any

from mpreg.actors.answers import asked_field, expired
from mpreg.actors.missing import explain_missing_module
from mpreg.actors.streams import GENERATORS, not_a_stream
from mpreg.errors import NoRouteError, SerializationError, TaskCancelled
from mpreg.protocol.blob import Blob
from mpreg.protocol.chains import ChainStep, pack_chain_answer
from mpreg.protocol.codec import dumps_value, loads_value
from mpreg.protocol.failures import ErrorInfo, to_info
from mpreg.protocol.messages import Call, CallDone
from mpreg.protocol.refs import (
    DepRef,
    FieldMissing,
    extract,
    pack_bundle,
    rewrite,
)
from mpreg.transport.connection import Connection

Spawn = Callable[[Coroutine[Any, Any, None]], "asyncio.Task[Any]"]


class _Failed(Exception):
    """A step failed; ``info`` already names it."""

    def __init__(self, info: ErrorInfo) -> None:
        super().__init__(info.message)
        self.info = info


class _Missed(Exception):
    """A placeholder names a field an earlier step's result does not have."""

    def __init__(self, reference: str, producer: str, reason: str) -> None:
        super().__init__(reason)
        self.reference, self.producer, self.reason = reference, producer, reason


class ChainRun:
    """The steps of one fused ``call``, run in order on ``functions``."""

    def __init__(
        self,
        conn: Connection,
        call: Call,
        functions: dict[str, Callable[..., Any]],
        endpoint_id: str,
    ) -> None:
        self.conn = conn
        self.call = call
        self.steps: tuple[ChainStep, ...] = call.chain
        self.functions = functions
        self.endpoint_id = endpoint_id
        self.at = 0  # the step running, or next to run
        self.results: dict[int, Any] = {}  # task id -> result of a step that ran
        self.external: dict[int, Any] = {}  # the first step's dependency results, by slot
        self.took: list[float] = []  # seconds per step that ran
        self.exported: list[Blob | None] = []  # per step that ran: its pickled result, if exported
        self.began = 0.0
        self.asked: tuple[tuple[Any, ...], bool] | None = None  # the running step's asked fields

    def __repr__(self) -> str:
        return f"<ChainRun call={self.call.call_id} step={self.at}/{len(self.steps)}>"

    def start(
        self, spawn: Spawn, cancelled: Callable[[], bool], forget: Callable[[], None]
    ) -> asyncio.Task[Any] | None:
        """Run the steps; once one returns an awaitable, the rest runs as the task returned.

        ``cancelled()`` says whether the node cancelled the call; ``forget()``
        is called when that task ends.
        """
        try:
            while self.at < len(self.steps):
                result = self._begin()
                if inspect.isawaitable(result):
                    return spawn(self._finish(result, cancelled, forget))
                self._ran(result)
        except _Failed as failed:
            self._answer(failed.info)
            return None
        self._answer(None)
        return None

    async def _finish(
        self, awaitable: Any, cancelled: Callable[[], bool], forget: Callable[[], None]
    ) -> None:
        deadline = self.call.deadline
        loop = asyncio.get_running_loop()
        timeout = asyncio.timeout_at(loop.time() + (deadline - time.time()) if deadline else None)
        error: ErrorInfo | None = None
        try:
            async with timeout:
                result = await awaitable
                while True:
                    self._ran(result)
                    if self.at == len(self.steps):
                        break
                    result = self._begin()
                    if inspect.isawaitable(result):
                        result = await result
        except _Failed as failed:
            error = failed.info
        except BaseException as exc:  # CancelledError raised by user code too: always answer
            step = self.steps[self.at]
            if cancelled():
                error = to_info(TaskCancelled(f"{step.command!r} was cancelled"))
            elif timeout.expired():
                error = to_info(expired(step.command, deadline))
            else:
                error = to_info(exc, user_code=True)
            error = _named(error, step)
        finally:
            forget()
        if self.conn.state.name == "OPEN":
            self._answer(error)

    def _begin(self) -> Any:
        """Call the next step's function; its result (perhaps awaitable). Raises _Failed."""
        step = self.steps[self.at]
        call = self.call
        if self.at and call.deadline and time.time() >= call.deadline:
            raise _Failed(_named(to_info(expired(step.command, call.deadline)), step))
        try:
            blob = call.args if step.args is None else step.args
            args, kwargs, *rest = loads_value(blob, what=f"arguments of {step.command!r}")
            self.asked = (rest[0], rest[1]) if rest else None
            if self.at == 0 and call.deps:
                self.external = {
                    slot: loads_value(blob, what="a dependency result") for slot, blob in call.deps
                }
            if self.at or call.deps:
                args = rewrite(args, self._leaf)
                kwargs = rewrite(kwargs, self._leaf)
        except SerializationError as exc:
            explained = explain_missing_module(exc, self.endpoint_id)
            raise _Failed(_named(to_info(explained), step)) from None
        except _Missed as missed:
            raise _Failed(_field_error(step, missed)) from None
        except KeyError as exc:  # the node sends every result a step names: a bug if not
            message = f"a placeholder names a result the chain did not carry: {exc}"
            raise _Failed(_named(ErrorInfo(kind="protocol", message=message), step)) from None
        fn = self.functions.get(step.fun)
        if fn is None:
            error = NoRouteError(f"this worker does not serve {step.fun!r}")
            raise _Failed(_named(to_info(error), step))
        self.began = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        except BaseException as exc:
            # Whatever user code raises is the user's error: the worker lives on.
            raise _Failed(_named(to_info(exc, user_code=True), step)) from None

    def _leaf(self, item: Any) -> Any:
        """A placeholder's value: an earlier step's result (or a field of it), or a dependency's."""
        if type(item) is not DepRef:
            return item
        if item.task_id in self.results:
            value = self.results[item.task_id]
            if not item.path:
                return value
            try:
                return extract(value, item.path)
            except FieldMissing as exc:
                producer = next(s.command for s in self.steps if s.task_id == item.task_id)
                reference = ".".join([producer, *map(str, item.path)])  # as the user wrote it
                raise _Missed(reference, producer, str(exc)) from None
        return self.external[item.slot]

    def _ran(self, result: Any) -> None:
        """The running step made ``result``: keep it for later steps, pickle it if exported."""
        step = self.steps[self.at]
        took = time.perf_counter() - self.began
        if type(result) in GENERATORS:  # a generator is streamed, never handed on
            raise _Failed(_named(not_a_stream(replace(self.call, fun=step.fun), result), step))
        blob = self._pickle(step, result) if step.export else None
        self.took.append(took)
        self.exported.append(blob)
        self.results[step.task_id] = result
        self.at += 1

    def _pickle(self, step: ChainStep, result: Any) -> Blob:
        """An exported result, or the bundle of the fields consumers use (mpreg.protocol.refs)."""
        what = f"the result of {step.command!r}"
        try:
            if self.asked is None:
                return dumps_value(result, what=what)
            paths, whole = self.asked
            fields = [asked_field(step.command, result, path) for path in paths]
            return pack_bundle(dumps_value(result, what=what) if whole else None, fields)
        except SerializationError as exc:
            explained = explain_missing_module(exc, self.endpoint_id)
            raise _Failed(_named(to_info(explained), step)) from None

    def _answer(self, error: ErrorInfo | None) -> None:
        result = pack_chain_answer(self.took, self.exported) if self.took else None
        self.conn.send(CallDone(self.call.call_id, result, error))


def _field_error(step: ChainStep, missed: _Missed) -> ErrorInfo:
    """A step's argument names a field an earlier step's result does not have."""
    return ErrorInfo(
        kind="field",
        message=f"argument {missed.reference!r}: {missed.producer!r} result {missed.reason}",
        exc_type="FieldError",
        command=step.command,
        fun=step.fun,
        reference=missed.reference,
    )


def _named(error: ErrorInfo, step: ChainStep) -> ErrorInfo:
    """``error`` as the failure of ``step``: the driver names that command."""
    return replace(error, command=step.command, fun=step.fun)


__all__ = ["ChainRun"]
