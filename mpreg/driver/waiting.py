"""Waiting on many futures in the caller's thread: get, wait, as_completed, cancel.

None of them cancels what it gives up waiting for, except ``get`` on a
KeyboardInterrupt (a notebook's interrupt button): see :mod:`mpreg.driver.futures`.
"""

from __future__ import annotations

import concurrent.futures
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from mpreg.driver.bars import bar
from mpreg.driver.futures import Future, FutureOwner, FutureState, refuse_loop_thread
from mpreg.errors import DeadlineExceeded, UsageError


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
                refuse_loop_thread(futures)
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


def get(
    futures: Sequence[Future], timeout: float | None = None, *, progress: bool = False
) -> list[Any]:
    """The results of ``futures`` in their order; the first error to arrive is raised.

    DeadlineExceeded if not all are done within ``timeout`` (they keep running).
    A KeyboardInterrupt cancels the unfinished ones, then propagates.
    ``progress``: show a bar that counts them done (:mod:`mpreg.driver.bars`).
    """
    unique = list(dict.fromkeys(futures))
    deadline = _deadline(timeout)
    watch = _Watch(unique)
    shown = bar(len(unique), "results") if progress else None
    try:
        for left in range(len(unique), 0, -1):
            future = watch.next_finished(deadline)
            if future is None:
                raise DeadlineExceeded(
                    f"{left} of {len(unique)} results not ready within {timeout:g}s"
                )
            if future._state is FutureState.CANCELLED or future._error is not None:
                future._outcome()  # raises: fail fast, do not wait for the rest
            if shown is not None:
                shown.advance()
    except KeyboardInterrupt:
        cancel([f for f in unique if not f.done()])
        raise
    finally:
        watch.close()
        if shown is not None:
            shown.close()
    _fetch_held(unique, deadline, timeout)
    return [f._outcome() for f in futures]


def _fetch_held(futures: Sequence[Future], deadline: float | None, timeout: float | None) -> None:
    """Bring the values still held in the cluster here: one fetch per client, all at once."""
    by_owner: dict[FutureOwner, list[Future]] = {}
    for future in futures:
        if future._is_held():
            by_owner.setdefault(future._client, []).append(future)
    if not by_owner:
        return
    if any(owner.on_loop_thread() for owner in by_owner):
        raise UsageError("these values are held in the cluster: await the futures to fetch them")
    asked = [owner.fetch_soon(held) for owner, held in by_owner.items()]
    try:
        for answer in asked:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            answer.result(left)
    except concurrent.futures.TimeoutError:
        raise DeadlineExceeded(f"the results did not arrive within {timeout:g}s") from None


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


def as_completed(
    futures: Iterable[Future], timeout: float | None = None, *, progress: bool = False
) -> Iterator[Future]:
    """Yield ``futures`` as they finish (those already done first, in the given order).

    ``timeout`` counts from this call; once it passes with some unfinished,
    the iterator raises DeadlineExceeded (they keep running). ``progress``:
    show a bar that counts them as they are yielded.
    """
    return _completed(list(dict.fromkeys(futures)), _deadline(timeout), timeout, progress)


def _completed(
    futures: list[Future], deadline: float | None, timeout: float | None, progress: bool
) -> Iterator[Future]:
    watch = _Watch(futures)
    shown = bar(len(futures), "completed") if progress else None
    try:
        for left in range(len(futures), 0, -1):
            future = watch.next_finished(deadline)
            if future is None:
                raise DeadlineExceeded(
                    f"{left} of {len(futures)} futures unfinished after {timeout:g}s"
                )
            if shown is not None:
                shown.advance()
            yield future
    finally:
        watch.close()
        if shown is not None:
            shown.close()


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
