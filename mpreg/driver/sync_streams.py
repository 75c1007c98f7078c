"""``for item in mpreg.stream("fun", ...)``: a stream on the sync facade.

A thin wrapper over :class:`~mpreg.driver.streams.AsyncStream` on the
runtime's loop. To spare a thread hop per item it fetches every item
received so far in one hop, and reports the items the caller took in
batches (without blocking), so the producer's credit follows what the
caller really consumed, not what was fetched.
"""

from __future__ import annotations

import collections
import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

from mpreg.driver import api
from mpreg.driver.requests import DEFAULT_RETRIES
from mpreg.driver.streams import WINDOW, WINDOW_BYTES, AsyncStream
from mpreg.protocol.codec import Blob, loads_value


class Stream(Iterator[Any]):
    """The items of a streamed call, in order: an iterator and a context manager.

    ``close()`` (or leaving the ``with`` block, ``break`` inside it, or
    dropping the iterator) cancels the producer where it runs.
    """

    def __init__(self, runtime: Any, stream: AsyncStream) -> None:
        self._runtime = runtime
        self._stream = stream
        self._local: collections.deque[Blob] = collections.deque()
        self._taken = 0  # items taken here, not reported to the loop yet
        self._batch = max(1, stream.credit.window // 4)
        self._done = False

    def __repr__(self) -> str:
        return f"<mpreg.Stream {self._stream.command} {'done' if self._done else 'open'}>"

    def __iter__(self) -> Stream:
        return self

    def __next__(self) -> Any:
        if not self._local:
            if self._done:
                raise StopIteration
            taken, self._taken = self._taken, 0
            try:
                batch = self._runtime.run(self._stream.take_ready(taken))
            except BaseException:
                # The stream's own error (it has ended), or an interrupt: then it stops here.
                self._stop_soon()
                raise
            if not batch:
                self._done = True
                raise StopIteration
            self._local.extend(batch)
        blob = self._local.popleft()
        self._taken += 1
        if self._taken >= self._batch:  # credit for these, without waiting for the loop
            taken, self._taken = self._taken, 0
            self._runtime.loop.call_soon_threadsafe(self._stream.consumed, taken)
        return loads_value(blob, what=f"an item of {self._stream.command!r}")

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop the stream: the producer is cancelled where it runs (its ``finally`` runs)."""
        if self._done:
            return
        self._done = True
        self._local.clear()
        with contextlib.suppress(RuntimeError):  # the runtime's loop has closed: nothing runs
            self._runtime.run(self._stream.aclose())

    def __del__(self) -> None:
        self._stop_soon()

    def _stop_soon(self) -> None:
        """Stop the stream without waiting (from ``__del__`` or an interrupt)."""
        if not self._done:
            self._done = True
            self._local.clear()
            with contextlib.suppress(RuntimeError):  # the runtime's loop has closed
                self._runtime.loop.call_soon_threadsafe(self._stream._give_up)


def stream(
    fun: str,
    /,
    *args: Any,
    datasets: Iterable[str] = (),
    timeout: float | None = None,
    retries: int = DEFAULT_RETRIES,
    window: int = WINDOW,
    window_bytes: int = WINDOW_BYTES,
    **kwargs: Any,
) -> Stream:
    """Stream the items of generator ``fun(*args, **kwargs)``, run where ``datasets`` live.

    ``for item in mpreg.stream("rows", datasets=["table"]): ...``. Items come
    in order as the generator makes them; it runs at most ``window`` items
    (about ``window_bytes`` bytes) ahead of the loop. ``datasets``,
    ``timeout`` (seconds for the whole stream), ``retries`` (before the first
    item), ``window`` and ``window_bytes`` are mpreg's own options; every other
    keyword goes to ``fun``. Raises PlanError or UsageError at once; the
    iterator raises RemoteError at the item where the generator raised,
    ActorDiedError, DeadlineExceeded or ClusterUnavailable after the items
    made before.
    """
    runtime, client = api._require()
    astream: AsyncStream = runtime.call(
        client.stream,
        fun,
        *args,
        datasets=datasets,
        timeout=timeout,
        retries=retries,
        window=window,
        window_bytes=window_bytes,
        **kwargs,
    )
    runtime.run(astream.start())  # the first window is made while the caller gets ready
    return Stream(runtime, astream)
