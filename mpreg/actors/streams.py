"""The producer's side of a stream, in the worker: a generator advanced only under credit.

A call is a stream when its node announced it with a ``StreamCredit`` that
``opens`` it, just before the call (:mod:`mpreg.protocol.streams`). Its
function's generator (sync or async; or a coroutine that returns one) is
then advanced one item per unit of credit and each item is sent as it is
made; with no credit left the producer waits, holding only the generator's
own state, while the worker serves other calls. The stream ends with the
call's ``CallDone``: no error once the generator is exhausted, the user's
exception at the item that raised it, "cancelled" when the node cancels it,
"deadline" past the call's deadline. Whatever ends it, the generator is
closed here (``close()`` / ``aclose()``), so the user's ``finally`` runs.
"""

from __future__ import annotations

import asyncio
import inspect
import time
import types
from collections.abc import Callable
from typing import Any

from mpreg.errors import DeadlineExceeded, SerializationError, TaskCancelled, UsageError
from mpreg.protocol.codec import dumps_value
from mpreg.protocol.failures import ErrorInfo, to_info
from mpreg.protocol.messages import Call, CallDone
from mpreg.protocol.streams import StreamCredit, StreamItem
from mpreg.transport.connection import Connection

GENERATORS = frozenset({types.GeneratorType, types.AsyncGeneratorType})
SLICE = 0.0005  # seconds of items made between two reads of the socket (as worker.INBOX_SLICE)


def not_a_stream(call: Call, result: Any) -> ErrorInfo:
    """The answer to an ordinary call whose function made a generator: say how to stream it."""
    _close_quietly(result)
    return to_info(
        UsageError(
            f"{call.fun!r} made a generator: its items stream with "
            f"mpreg.stream({call.fun!r}, ...) (or Client.stream), not with a call or request"
        )
    )


class Producers:
    """The streams one worker produces, and the credit announced for calls not yet run."""

    def __init__(self) -> None:
        self.opened: dict[int, int] = {}  # call id -> first credit, for calls not yet run
        self._running: dict[int, Producer] = {}

    def __repr__(self) -> str:
        return f"<Producers running={len(self._running)} announced={len(self.opened)}>"

    def on_credit(self, message: StreamCredit) -> None:
        """Credit from the node: a call announced as a stream, or more for a running one."""
        if message.opens:
            self.opened[message.call_id] = message.items
            return
        producer = self._running.get(message.call_id)
        if producer is not None:  # else it already ended: the top-up came too late
            producer.grant(message.items)

    def start(
        self,
        conn: Connection,
        call: Call,
        result: Any,
        credit: int,
        spawn: Callable[[Any], asyncio.Task[Any]],
    ) -> asyncio.Task[Any]:
        """Stream ``result`` for ``call``; the returned task is cancelled to stop it."""
        producer = Producer(conn, call, result, credit)
        self._running[call.call_id] = producer
        task = spawn(producer.run())
        task.add_done_callback(lambda _: self._running.pop(call.call_id, None))
        return task


class Producer:
    """One stream: advances its generator while it has credit and sends each item."""

    def __init__(self, conn: Connection, call: Call, result: Any, credit: int) -> None:
        self.conn = conn
        self.call = call
        self.result = result
        self.credit = credit
        self.sent = 0
        self.error: ErrorInfo | None = None
        self._more = asyncio.Event()

    def __repr__(self) -> str:
        return f"<Producer call={self.call.call_id} sent={self.sent} credit={self.credit}>"

    def grant(self, items: int) -> None:
        """The consumer took items: ``items`` more may be made."""
        self.credit += items
        self._more.set()

    async def run(self) -> None:
        """Stream until the generator ends, raises, or is cancelled; answer the call; close it."""
        call = self.call
        error: ErrorInfo | None = None
        source = self.result
        deadline = _loop_time(call.deadline) if call.deadline else None
        timeout = asyncio.timeout_at(deadline)
        try:
            async with timeout:
                if inspect.isawaitable(source):
                    source = self.result = await source
                if type(source) not in GENERATORS:
                    error = to_info(
                        UsageError(
                            f"{call.fun!r} returned {type(source).__name__}, "
                            "not a generator: only generator functions stream (use mpreg.call)"
                        )
                    )
                else:
                    await self._produce(source)
                    error = self.error
        except BaseException as exc:
            if isinstance(exc, asyncio.CancelledError):
                error = to_info(TaskCancelled(f"{call.command or call.fun!r} was cancelled"))
            elif isinstance(exc, TimeoutError) and timeout.expired():
                late = time.time() - call.deadline
                message = f"{call.command or call.fun!r} passed its deadline ({late:.3f}s ago)"
                error = to_info(DeadlineExceeded(message))
            else:  # a coroutine returning the generator raised
                error = to_info(exc, user_code=True)
        finally:
            await _close(source)
        if self.conn.state.name == "OPEN":
            self.conn.send(CallDone(call.call_id, None, error))

    async def _produce(self, source: Any) -> None:
        what = f"item of {self.call.command or self.call.fun!r}"
        sync = type(source) is types.GeneratorType
        yield_at = time.perf_counter() + SLICE
        while True:
            if self.credit <= 0:
                while self.credit <= 0:
                    self._more.clear()
                    await self._more.wait()
                yield_at = time.perf_counter() + SLICE
            try:
                item = next(source) if sync else await anext(source)
            except (StopIteration, StopAsyncIteration):
                return
            except asyncio.CancelledError:
                raise  # cancelled, or its deadline: run() says which
            except BaseException as exc:  # the user's generator raised, at this item
                self.error = to_info(exc, user_code=True)  # traceback from the user's frame
                return
            try:
                blob = dumps_value(item, what=f"{what} {self.sent}")
            except SerializationError as exc:
                self.error = to_info(exc)  # mpreg's refusal, not the user's exception
                return
            self.credit -= 1
            self.sent += 1
            self.conn.send(StreamItem(self.call.call_id, blob))
            if time.perf_counter() > yield_at:
                # Between slices the worker reads its socket: credit, cancels, other calls.
                # Items of one slice leave in one write.
                await asyncio.sleep(0)
                yield_at = time.perf_counter() + SLICE


async def _close(source: Any) -> None:
    """Close a generator where it stands, so its ``finally`` runs (errors there are dropped)."""
    try:
        if type(source) is types.AsyncGeneratorType:
            await source.aclose()
        elif type(source) is types.GeneratorType:
            source.close()
    except Exception:
        pass


def _close_quietly(source: Any) -> None:
    if type(source) is types.GeneratorType:
        source.close()
    elif type(source) is types.AsyncGeneratorType:
        # Never started: nothing to run, and aclose() would need awaiting.
        pass


def _loop_time(deadline: float) -> float:
    """The running loop's clock reading at the wall-clock ``deadline``."""
    return asyncio.get_running_loop().time() + (deadline - time.time())
