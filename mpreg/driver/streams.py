"""Streams on the async client: ``async for item in client.stream("fun", ...)``.

A generator function (or actor method) streams its items as it makes them
(:mod:`mpreg.protocol.streams` has the messages, docs/design.md the protocol).
The client opens the stream with a window of credit and gives credit back as
the consumer takes items (:class:`~mpreg.protocol.credit.CreditWindow`): the
producer never runs more than a window ahead, so a slow consumer pauses it and
the items buffered here are at most a window.

The iterator yields the items in order, then ends, or raises the stream's
error after the items made before it: RemoteError where the generator
raised, ActorDiedError if its process died after the first item (before it,
the call is retried like any other), DeadlineExceeded past ``timeout``,
ClusterUnavailable if the client's node went away. Leaving it early
(``break`` in ``async with``, ``aclose()``, or dropping it) cancels the
producer, whose generator is closed where it runs (its ``finally`` runs).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import time
import weakref
from collections.abc import Iterable
from typing import Any, Protocol

from mpreg.commands import Command
from mpreg.driver.futures import Future
from mpreg.driver.link import NodeLink
from mpreg.driver.planner import plan_request
from mpreg.driver.requests import DEFAULT_RETRIES, TaskIds, deadline_after, task_spec
from mpreg.errors import ClusterUnavailable, DeadlineExceeded, ProtocolError, UsageError
from mpreg.protocol.codec import Blob, loads_value
from mpreg.protocol.credit import CreditWindow
from mpreg.protocol.failures import from_info
from mpreg.protocol.messages import TaskSpec
from mpreg.protocol.streams import StreamCredit, StreamEnd, StreamItem, StreamStart

WINDOW = 64  # items a producer may run ahead of its consumer
WINDOW_BYTES = 8 * 1024 * 1024  # ... fewer when they are large: about this many bytes of them


class StreamOwner(Protocol):
    """What a stream needs of its :class:`~mpreg.driver.client.Client`."""

    link: NodeLink
    _task_ids: TaskIds
    _streams: StreamTable
    _loop: asyncio.AbstractEventLoop | None

    def _send_notice(self, message: object) -> None: ...

    def cancel_tasks(self, task_ids: Iterable[int]) -> None: ...


class StreamTable:
    """A client's open streams, by stream id; a dropped stream leaves it by itself."""

    def __init__(self) -> None:
        self._open: weakref.WeakValueDictionary[int, AsyncStream] = weakref.WeakValueDictionary()

    def __len__(self) -> int:
        return len(self._open)

    def add(self, stream: AsyncStream) -> None:
        """``stream`` was opened on the node: its messages go to it."""
        self._open[stream.stream_id] = stream

    def discard(self, stream_id: int) -> None:
        """No more messages for ``stream_id`` (its consumer gave up)."""
        self._open.pop(stream_id, None)

    def on_message(self, message: object) -> bool:
        """Take a stream's message from the node; False if it is not one.

        Messages of streams no longer open are dropped (True).
        """
        match message:
            case StreamItem(call_id=stream_id):
                stream = self._open.get(stream_id)
                if stream is not None:
                    stream._on_item(message.value)
            case StreamEnd(stream_id=stream_id):
                stream = self._open.pop(stream_id, None)
                if stream is not None:
                    error = message.error
                    stream._end(None if error is None else from_info(error, message.where))
            case _:
                return False
        return True

    def fail_all(self, error: BaseException) -> None:
        """The node went away (or the client closed): every open stream ends with ``error``."""
        streams, self._open = list(self._open.values()), weakref.WeakValueDictionary()
        for stream in streams:
            stream._end(error)


class AsyncStream:
    """The items of one streamed call, as they come; see :meth:`Client.stream`.

    An async iterator and async context manager; ``aclose()`` stops the
    producer. ``where`` is the endpoint that produced it, once ended.
    """

    def __init__(self, client: StreamOwner, spec: TaskSpec, window: int, window_bytes: int) -> None:
        self._client = client
        self._spec = spec
        self.stream_id = spec.task_id
        self.command = spec.name
        self.credit = CreditWindow(window, window_bytes)
        self.where = ""
        self._items: collections.deque[Blob] = collections.deque()
        self._error: BaseException | None = None
        self._started = False
        self._ended = False  # the node said so, or it failed, or its consumer gave up
        self._wake: asyncio.Event | None = None

    def __repr__(self) -> str:
        state = "ended" if self._ended else "open" if self._started else "new"
        return f"<AsyncStream {self.command} {state} {self.credit!r}>"

    def __aiter__(self) -> AsyncStream:
        return self

    async def __anext__(self) -> Any:
        blob = await self._next_blob()
        if blob is None:
            raise StopAsyncIteration
        self.consumed(1)
        return loads_value(blob, what=f"an item of {self.command!r}")

    async def __aenter__(self) -> AsyncStream:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Open the stream on the node (``async for`` does it on the first item)."""
        if self._started:
            return
        self._started = True
        self._wake = asyncio.Event()
        try:
            conn = await self._client.link.connection()
        except BaseException:
            self._ended = True
            raise
        self._client._streams.add(self)
        conn.send(StreamStart(self.stream_id, self._spec, self.credit.granted))

    async def aclose(self) -> None:
        """Stop the stream: the producer is cancelled where it runs; items not taken are dropped."""
        self._give_up()

    async def take_ready(self, taken: int = 0) -> list[Blob]:
        """The items received and not taken yet (waiting for one), after ``taken`` were consumed.

        Empty once the stream ended; raises its error after its last item.
        The sync iterator's one hop per batch (:mod:`mpreg.driver.sync_streams`).
        """
        if taken:
            self.consumed(taken)
        blob = await self._next_blob()
        if blob is None:
            return []
        items = [blob, *self._items]
        self._items.clear()
        return items

    def consumed(self, count: int) -> None:
        """The consumer took ``count`` items: give the producer credit for more, in batches."""
        grant = self.credit.take(count)
        if grant and not self._ended:
            self._client._send_notice(StreamCredit(self.stream_id, grant))

    async def _next_blob(self) -> Blob | None:
        await self.start()
        assert self._wake is not None
        deadline = self._spec.deadline
        while not self._items and not self._ended:
            self._wake.clear()
            try:
                async with asyncio.timeout(deadline - time.time() if deadline else None):
                    await self._wake.wait()
            except TimeoutError:
                self._give_up()
                self._error = DeadlineExceeded(
                    f"{self.command!r} did not finish streaming by its deadline"
                )
        if self._items:
            return self._items.popleft()
        if self._error is not None:
            raise self._error
        return None

    def _on_item(self, blob: Blob) -> None:
        if self._ended:
            return
        try:
            self.credit.on_item(blob.nbytes)
        except ValueError as exc:
            self._give_up()
            self._error = ProtocolError(f"{self.command!r}: {exc}")
            return
        self._items.append(blob)
        if self._wake is not None:
            self._wake.set()

    def _end(self, error: BaseException | None) -> None:
        if self._ended:
            return
        self._ended = True
        self._error = error
        if self._wake is not None:
            self._wake.set()

    def _give_up(self) -> None:
        """The consumer stops: cancel the producer (on the client's loop)."""
        if self._ended:
            return
        self._ended = True
        self._items.clear()
        if self._wake is not None:
            self._wake.set()
        if self._started:
            self._client._streams.discard(self.stream_id)
            self._client.cancel_tasks([self.stream_id])

    def __del__(self) -> None:
        # Dropped unfinished (a garbage-collected iterator): the producer stops too.
        if self._started and not self._ended:
            loop = self._client._loop
            if loop is not None:
                with contextlib.suppress(RuntimeError):  # the loop has closed
                    loop.call_soon_threadsafe(self._client.cancel_tasks, [self.stream_id])


def open_stream(
    client: StreamOwner,
    fun: str,
    /,
    *args: Any,
    datasets: Iterable[str] = (),
    timeout: float | None = None,
    retries: int = DEFAULT_RETRIES,
    window: int = WINDOW,
    window_bytes: int = WINDOW_BYTES,
    **kwargs: Any,
) -> AsyncStream:
    """Stream the items of generator ``fun(*args, **kwargs)`` run where ``datasets`` live.

    ``async for item in client.stream("fun", ...)`` (or ``async with ... as
    items``). ``datasets``, ``timeout``, ``retries``, ``window`` and
    ``window_bytes`` are mpreg's own options: ``timeout`` seconds for the
    whole stream; ``retries`` if its process dies before the first item;
    ``window`` items (about ``window_bytes`` bytes of them at most) may be made
    ahead of the consumer. Raises PlanError or UsageError at once for a
    malformed call; the iterator raises the rest (see :mod:`mpreg.driver.streams`).
    """
    if window < 1:
        raise UsageError(f"a stream's window is at least 1 item, not {window}")
    client.link.reconnect()  # raises if closed; after giving up, looks for a member again
    stream_id = client._task_ids.take()
    name = f"<mpreg.stream {fun}>"  # no argument can be mistaken for a reference
    wanted = datasets if isinstance(datasets, str) else list(datasets)
    plan = plan_request(
        [Command(name, fun, list(args), wanted, kwargs or None)],
        first_task_id=stream_id,
        futures=_no_futures,
    )
    spec = task_spec(plan.tasks[0], retries, keep=False, deadline=deadline_after(timeout))
    return AsyncStream(client, spec, window, window_bytes)


def _no_futures(value: Any) -> None:
    if isinstance(value, Future):
        raise UsageError("a stream's arguments are values: pass future.result(), not the future")


def unavailable(lost: str) -> ClusterUnavailable:
    """The error open streams end with when the client's node goes away."""
    return ClusterUnavailable(f"lost node {lost} while streaming: the stream cannot resume")
