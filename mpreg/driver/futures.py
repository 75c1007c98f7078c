"""``mpreg.Future``: a call's result that will exist, and waiting on many of them.

A Future is settled on its client's event-loop thread (the background thread
of the sync facade, or your own loop with an async :class:`Client`) and can be
read from any thread: ``result(timeout)`` and friends block the caller's
thread, ``await future`` suspends a coroutine on any running loop. It follows
:class:`concurrent.futures.Future` where that makes sense, with mpreg's
errors: a timeout raises :class:`DeadlineExceeded`, a cancelled future
:class:`TaskCancelled`.

Waiting never cancels: ``result(timeout)``, ``get(timeout)``, ``wait`` and
``as_completed`` that give up leave the call running. Only ``cancel()``, a
``timeout=`` given to ``submit``, and a KeyboardInterrupt while ``result`` or
``get`` blocks (a notebook's interrupt button) cancel the call in the cluster.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterable, Iterator, Sequence
from typing import Any, Protocol

from mpreg.errors import DeadlineExceeded, TaskCancelled, UsageError

log = logging.getLogger(__name__)


class FutureState(enum.Enum):
    PENDING = "pending"
    FINISHED = "finished"  # with a value or an error
    CANCELLED = "cancelled"


class FutureOwner(Protocol):
    """What a Future needs from the client that made it (a seam: no import of client)."""

    def on_loop_thread(self) -> bool:
        """True in the thread that settles this client's futures (blocking there deadlocks)."""
        ...

    def cancel_futures(self, futures: Sequence[Future]) -> None:
        """Forget these (already settled) futures and send one Cancel; callable from any thread."""
        ...

    def _release_later(self, task_id: int) -> None: ...


DoneCallback = Callable[["Future"], object]


class Future:
    """A result that will exist: what ``submit`` returns; pass it to another submit.

    Like a Ray ObjectRef: passing it as an argument makes the cluster feed the
    result in directly, without a trip back to the driver. Thread-safe.
    Cancelling a coroutine that awaits it does not cancel the call; ``cancel()`` does.
    """

    __slots__ = (
        "__weakref__",
        "_callbacks",
        "_client",
        "_error",
        "_lock",
        "_state",
        "_value",
        "command",
        "task_id",
        "timer",
        "where",
    )

    def __init__(self, client: FutureOwner, task_id: int, command: str) -> None:
        self._client = client
        self.task_id = task_id
        self.command = command
        self.where = ""
        self._lock = threading.Lock()
        self._state = FutureState.PENDING
        self._value: Any = None
        self._error: BaseException | None = None
        self._callbacks: list[DoneCallback] = []
        # The client's timer for a submit(timeout=...): touched on its loop thread only.
        self.timer: asyncio.TimerHandle | None = None

    def __repr__(self) -> str:
        state = self._state.value
        if self._state is FutureState.FINISHED and self._error is not None:
            state = f"failed ({type(self._error).__name__})"
        return f"<mpreg.Future {self.command} task={self.task_id} {state}>"

    def __del__(self) -> None:
        # At interpreter shutdown or with a closed loop there is nothing to release.
        with contextlib.suppress(Exception):
            self._client._release_later(self.task_id)

    # --- asking -----------------------------------------------------------------------

    def done(self) -> bool:
        """True once it has a value or an error, or was cancelled."""
        return self._state is not FutureState.PENDING

    def cancelled(self) -> bool:
        return self._state is FutureState.CANCELLED

    def result(self, timeout: float | None = None) -> Any:
        """The call's value, waiting up to ``timeout`` seconds (None: as long as it takes).

        Raises the call's error (a RemoteError if the function raised),
        TaskCancelled if it was cancelled, DeadlineExceeded if it is not done
        in time (the call keeps running). A KeyboardInterrupt while waiting
        cancels the call, then propagates. Raises UsageError when called,
        unfinished, on the event loop that settles it: ``await`` it there.
        """
        self._wait(timeout)
        return self._outcome()

    def exception(self, timeout: float | None = None) -> BaseException | None:
        """The call's error, or None if it returned a value; waits like :meth:`result`.

        Raises TaskCancelled if it was cancelled, DeadlineExceeded if not done in time.
        """
        self._wait(timeout)
        if self._state is FutureState.CANCELLED:
            raise self._cancelled_error()
        return self._error

    def cancel(self) -> bool:
        """Settle it as cancelled at once and tell the cluster to drop or stop the call.

        False if it had already finished (with a value or an error); True if it
        is cancelled now (or was already). Whoever then asks for the result gets
        TaskCancelled, whatever the cluster does.
        """
        if not self._set(FutureState.CANCELLED, None, None):
            return self.cancelled()
        self._client.cancel_futures([self])
        return True

    def add_done_callback(self, fn: DoneCallback) -> None:
        """Call ``fn(future)`` once, when it is done; at once if it already is.

        ``fn`` runs in the thread that settles the future: the client's event-loop
        thread (the sync facade's background thread, or your loop with an async
        Client), or the thread that called ``cancel()``; when already done, in
        the caller's thread. It must not block. Exceptions it raises are logged.
        """
        with self._lock:
            if self._state is FutureState.PENDING:
                self._callbacks.append(fn)
                return
        _call(fn, self)

    def __await__(self) -> Generator[Any, None, Any]:
        if self._state is FutureState.PENDING:
            loop = asyncio.get_running_loop()
            woken: asyncio.Future[None] = loop.create_future()

            def wake(_: Future) -> None:
                if _running_loop() is loop:
                    _set_none(woken)
                else:
                    with contextlib.suppress(RuntimeError):  # that loop has closed
                        loop.call_soon_threadsafe(_set_none, woken)

            self.add_done_callback(wake)
            try:
                yield from woken.__await__()
            finally:
                self._remove_callback(wake)
        return self._outcome()

    # --- settling (the client, on its loop thread) --------------------------------------

    def _finish(self, value: Any) -> bool:
        return self._set(FutureState.FINISHED, value, None)

    def _fail(self, error: BaseException) -> bool:
        return self._set(FutureState.FINISHED, None, error)

    def _set(self, state: FutureState, value: Any, error: BaseException | None) -> bool:
        """Settle once; False if it already was. Callbacks run outside the lock."""
        with self._lock:
            if self._state is not FutureState.PENDING:
                return False
            self._state, self._value, self._error = state, value, error
            callbacks, self._callbacks = self._callbacks, []
        for fn in callbacks:
            _call(fn, self)
        return True

    # --- internals --------------------------------------------------------------------

    def _outcome(self) -> Any:
        if self._state is FutureState.CANCELLED:
            raise self._cancelled_error()
        if self._error is not None:
            raise self._error
        return self._value

    def _cancelled_error(self) -> TaskCancelled:
        return TaskCancelled(f"{self.command} (task {self.task_id}) was cancelled")

    def _wait(self, timeout: float | None) -> None:
        if self._state is not FutureState.PENDING:
            return
        _refuse_loop_thread([self])
        settled = threading.Event()

        def wake(_: Future) -> None:
            settled.set()

        self.add_done_callback(wake)
        try:
            if not settled.wait(timeout):
                raise DeadlineExceeded(f"{self.command} did not finish within {timeout:g}s")
        except KeyboardInterrupt:
            self.cancel()  # the interrupt button: stop the work in the cluster too
            raise
        finally:
            self._remove_callback(wake)

    def _remove_callback(self, fn: DoneCallback) -> None:
        with self._lock, contextlib.suppress(ValueError):
            self._callbacks.remove(fn)


def _call(fn: DoneCallback, future: Future) -> None:
    try:
        fn(future)
    except Exception:
        log.exception("done callback %r of %r raised", fn, future)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _set_none(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


def _refuse_loop_thread(futures: Iterable[Future]) -> None:
    for future in futures:
        if not future.done() and future._client.on_loop_thread():
            raise UsageError(
                f"waiting for {future!r} here would block the event loop that settles it; "
                "await it instead"
            )


# --- many futures ------------------------------------------------------------------------


class _Watch:
    """Which of some futures have finished, in finishing order, seen from the caller's thread."""

    def __init__(self, futures: Sequence[Future]) -> None:
        self._futures = futures
        self._cond = threading.Condition()
        self._finished: deque[Future] = deque()
        for future in futures:  # those done already arrive at once, in the given order
            future.add_done_callback(self._on_done)
        if len(self._finished) < len(futures):
            try:
                _refuse_loop_thread(futures)
            except UsageError:
                self.close()
                raise

    def _on_done(self, future: Future) -> None:
        with self._cond:
            self._finished.append(future)
            self._cond.notify_all()

    def next_finished(self, deadline: float | None) -> Future | None:
        """The next future to finish; None if none did by ``deadline`` (time.monotonic())."""
        with self._cond:
            while not self._finished:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return None
                self._cond.wait(remaining)
            return self._finished.popleft()

    def close(self) -> None:
        for future in self._futures:
            future._remove_callback(self._on_done)


def _deadline(timeout: float | None) -> float | None:
    return None if timeout is None else time.monotonic() + timeout


def get(futures: Sequence[Future], timeout: float | None = None) -> list[Any]:
    """The results of ``futures`` in their order; the first error to arrive is raised.

    DeadlineExceeded if not all are done within ``timeout`` (they keep running).
    A KeyboardInterrupt cancels the unfinished ones, then propagates.
    """
    unique = list(dict.fromkeys(futures))
    deadline = _deadline(timeout)
    watch = _Watch(unique)
    try:
        for left in range(len(unique), 0, -1):
            future = watch.next_finished(deadline)
            if future is None:
                raise DeadlineExceeded(
                    f"{left} of {len(unique)} results not ready within {timeout:g}s"
                )
            if future._state is FutureState.CANCELLED or future._error is not None:
                future._outcome()  # raises: fail fast, do not wait for the rest
    except KeyboardInterrupt:
        cancel([f for f in unique if not f.done()])
        raise
    finally:
        watch.close()
    return [f._outcome() for f in futures]


def wait(
    futures: Sequence[Future], *, num_returns: int = 1, timeout: float | None = None
) -> tuple[list[Future], list[Future]]:
    """Wait until ``num_returns`` futures are done or ``timeout`` passes; (done, pending).

    ``done`` holds at most ``num_returns`` futures, in the given order;
    ``pending`` the rest, untouched: they keep running and can be waited on again.
    """
    if num_returns < 0:
        raise UsageError(f"num_returns must be 0 or more, not {num_returns}")
    items = list(futures)
    wanted = min(num_returns, len(items))
    deadline = _deadline(timeout)
    watch = _Watch(list(dict.fromkeys(items)))
    try:
        finished = sum(1 for f in items if f.done())
        while finished < wanted and watch.next_finished(deadline) is not None:
            finished = sum(1 for f in items if f.done())
    finally:
        watch.close()
    done = [f for f in items if f.done()][:wanted]
    chosen = {id(f) for f in done}
    return done, [f for f in items if id(f) not in chosen]


def as_completed(futures: Iterable[Future], timeout: float | None = None) -> Iterator[Future]:
    """Yield ``futures`` as they finish (those already done first, in the given order).

    ``timeout`` counts from this call; once it passes with some unfinished,
    the iterator raises DeadlineExceeded (they keep running).
    """
    return _completed(list(dict.fromkeys(futures)), _deadline(timeout), timeout)


def _completed(
    futures: list[Future], deadline: float | None, timeout: float | None
) -> Iterator[Future]:
    watch = _Watch(futures)
    try:
        for left in range(len(futures), 0, -1):
            future = watch.next_finished(deadline)
            if future is None:
                raise DeadlineExceeded(
                    f"{left} of {len(futures)} futures unfinished after {timeout:g}s"
                )
            yield future
    finally:
        watch.close()


def cancel(futures: Future | Iterable[Future]) -> None:
    """Cancel every unfinished one of ``futures`` (see :meth:`Future.cancel`).

    One Cancel message per client, whatever the number of futures.
    """
    items = [futures] if isinstance(futures, Future) else list(futures)
    by_client: dict[int, tuple[FutureOwner, list[Future]]] = {}
    for future in items:
        if future._set(FutureState.CANCELLED, None, None):
            by_client.setdefault(id(future._client), (future._client, []))[1].append(future)
    for client, cancelled in by_client.values():
        client.cancel_futures(cancelled)
