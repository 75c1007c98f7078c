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
import concurrent.futures
import contextlib
import enum
import logging
import threading
from collections.abc import Callable, Generator, Iterable, Sequence
from typing import Any, Protocol

from mpreg.errors import (
    DeadlineExceeded,
    TaskCancelled,
    UsageError,
)
from mpreg.protocol.messages import TaskSpec

log = logging.getLogger(__name__)


LANE = -1  # Future.generation of a call that went on a lane (its value, when done, is here)


class _Held:
    """The value of a future whose result is still in the cluster (:mod:`mpreg.driver.held`)."""

    def __repr__(self) -> str:
        return "<held in the cluster>"


HELD: Any = _Held()


class FutureState(enum.Enum):
    PENDING = "pending"
    FINISHED = "finished"  # with a value or an error
    CANCELLED = "cancelled"


class FutureOwner(Protocol):
    """What a Future needs from the client that made it (a seam: no import of client)."""

    @property
    def generation(self) -> int:
        """Changes whenever the client's connection is replaced (a failover)."""
        ...

    def on_loop_thread(self) -> bool:
        """True in the thread that settles this client's futures (blocking there deadlocks)."""
        ...

    def cancel_futures(self, futures: Sequence[Future]) -> None:
        """Forget these (already settled) futures and send one Cancel; callable from any thread."""
        ...

    def _release_later(self, task_id: int) -> None: ...

    async def fetch(self, futures: Iterable[Future]) -> None:
        """Bring held values here (on the client's loop thread)."""
        ...

    def fetch_soon(self, futures: Sequence[Future]) -> concurrent.futures.Future[None]:
        """:meth:`fetch` from another thread."""
        ...


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
        "_woken",
        "command",
        "deps",
        "generation",
        "held",
        "lane",
        "local",
        "spec",
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
        # What coroutines awaiting it on the client's own loop sleep on (the common
        # async case, kept cheaper than a done callback: no closure, no lock).
        self._woken: list[asyncio.Future[None]] = []
        # The client's timer for a submit(timeout=...): touched on its loop thread only.
        self.timer: asyncio.TimerHandle | None = None
        # The client's, on its loop thread, to send the call to another node if its
        # own goes away while it runs: what was sent, the connection it went out on
        # (0: not sent yet), and the futures its arguments use.
        self.spec: TaskSpec | None = None
        self.generation = 0
        self.deps: tuple[Future, ...] = ()
        self.held = 0  # bytes of its result held in the cluster (0: none, or here)
        self.local: Any = HELD  # a put's value, kept here too
        self.lane: Any = None  # the client's lane its call is on (mpreg.driver.lanes), if any

    def __repr__(self) -> str:
        state = self._state.value
        if self._state is FutureState.FINISHED and self._error is not None:
            state = f"failed ({type(self._error).__name__})"
        return f"<mpreg.Future {self.command} task={self.task_id} {state}>"

    def __del__(self) -> None:
        if self.generation == LANE:
            return  # its call went on a lane and its value came here: the node has nothing
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
        self._materialize(timeout)
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
        if self._state is FutureState.PENDING and self._client.on_loop_thread():
            woken: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._woken.append(woken)
            if self._state is not FutureState.PENDING:  # settled from another thread meanwhile
                _set_none(woken)
            try:
                yield from woken.__await__()
            finally:
                if self._state is FutureState.PENDING:  # this awaiter gave up
                    with contextlib.suppress(ValueError):  # (settled just now)
                        self._woken.remove(woken)
        elif self._state is FutureState.PENDING:
            # Another loop than the client's: woken by a done callback, across threads.
            loop = asyncio.get_running_loop()
            elsewhere: asyncio.Future[None] = loop.create_future()

            def wake(_: Future) -> None:
                if _running_loop() is loop:
                    _set_none(elsewhere)
                else:
                    with contextlib.suppress(RuntimeError):  # that loop has closed
                        loop.call_soon_threadsafe(_set_none, elsewhere)

            self.add_done_callback(wake)
            try:
                yield from elsewhere.__await__()
            finally:
                self._remove_callback(wake)
        if self._is_held():
            if self._client.on_loop_thread():
                yield from self._client.fetch([self]).__await__()
            else:
                yield from asyncio.wrap_future(self._client.fetch_soon([self])).__await__()
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
        if self._woken:
            self._wake_awaiters()
        for fn in callbacks:
            _call(fn, self)
        return True

    def _fetched(self, value: Any, error: BaseException | None) -> None:
        """Its held value arrived (or could not): from now on it is here."""
        with self._lock:
            if self._value is HELD and self._error is None:
                self._value, self._error = value, error

    # --- internals --------------------------------------------------------------------

    def _is_held(self) -> bool:
        """Done with a value that is still in the cluster."""
        return self._value is HELD and self._state is FutureState.FINISHED and self._error is None

    def _materialize(self, timeout: float | None) -> None:
        """Fetch its held value (blocking this thread, never the client's loop)."""
        if not self._is_held():
            return
        if self._client.on_loop_thread():
            raise UsageError(
                f"{self!r} is done, but its value ({self.held:,} bytes) is held in the "
                "cluster: await it to fetch it here"
            )
        try:
            self._client.fetch_soon([self]).result(timeout)
        except concurrent.futures.TimeoutError:
            raise DeadlineExceeded(
                f"the value of {self.command} did not arrive within {timeout:g}s"
            ) from None

    def _wake_awaiters(self) -> None:
        woken, self._woken = self._woken, []
        if self._client.on_loop_thread():
            _set_all(woken)
        else:
            with contextlib.suppress(RuntimeError):  # the client's loop has closed
                woken[0].get_loop().call_soon_threadsafe(_set_all, woken)

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
        refuse_loop_thread([self])
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
        if self._state is FutureState.PENDING:  # else settling already took it
            with self._lock:
                if fn in self._callbacks:
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


def _set_all(waiters: list[asyncio.Future[None]]) -> None:
    for waiter in waiters:
        _set_none(waiter)


def refuse_loop_thread(futures: Iterable[Future]) -> None:
    for future in futures:
        if not future.done() and future._client.on_loop_thread():
            raise UsageError(
                f"waiting for {future!r} here would block the event loop that settles it; "
                "await it instead"
            )
