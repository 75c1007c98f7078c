"""The sync conveniences beside ``mpreg.request``: ``call``, ``submit_request``,
``put``, ``last_trace``, ``functions``, ``datasets``.

Each runs on the process-wide runtime of :mod:`mpreg.driver.api`, like the
rest of the sync facade.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from mpreg.commands import Command
from mpreg.driver import api
from mpreg.driver.client import STATUS_TIMEOUT
from mpreg.driver.discovery import DatasetInfo, FunctionInfo, datasets_of, functions_of
from mpreg.driver.futures import Future
from mpreg.driver.progress import AsyncRequestHandle, TracedResults
from mpreg.driver.requests import DEFAULT_RETRIES
from mpreg.driver.trace import Trace
from mpreg.errors import MpregError


def call(
    fun: str,
    /,
    *args: Any,
    datasets: Iterable[str] = (),
    timeout: float | None = None,
    retries: int = DEFAULT_RETRIES,
    kwargs: Mapping[str, Any] | None = None,
    **more: Any,
) -> Any:
    """Run ``fun(*args, **kwargs)`` once, where ``datasets`` live; return its value.

    ``datasets``, ``timeout``, ``retries`` and ``kwargs`` are mpreg's own
    options; every other keyword argument goes to ``fun``. To pass ``fun`` an
    argument named like one of them, put it in ``kwargs``:
    ``mpreg.call("f", timeout=5, kwargs={"timeout": 1})`` runs ``f(timeout=1)``
    within 5 s. Raises what ``mpreg.request`` raises.
    """
    given = dict(kwargs or {})
    both = sorted(given.keys() & more.keys())
    if both:
        raise TypeError(f"mpreg.call() got {both} both in kwargs= and as keyword arguments")
    given.update(more)
    wanted = datasets if isinstance(datasets, str) else list(datasets)
    name = f"<mpreg.call {fun}>"  # no argument can be mistaken for a reference to it
    command = Command(name, fun, list(args), wanted, given or None)
    return api.request([command], timeout=timeout, retries=retries)[name]


class RequestHandle:
    """A request in flight (:func:`submit_request`), used from any thread but the runtime's.

    ``for name, value in handle.as_completed()`` yields each command as it
    finishes (``value``: its result if the request returns it, sinks or every
    command with ``return_all``; else None), then raises the request's error
    if it failed. ``result(timeout)`` waits for ``{sink name: result}`` (with
    ``.trace``); ``trace()`` is the trace so far; ``done()``, ``cancel()``.
    """

    def __init__(self, runtime: Any, inner: AsyncRequestHandle) -> None:
        self._runtime = runtime
        self._inner = inner

    def __repr__(self) -> str:
        return repr(self._inner)

    @property
    def commands(self) -> list[str]:
        return self._inner.commands

    def done(self) -> bool:
        return self._inner.done()

    def finished(self) -> list[str]:
        return self._runtime.call(self._inner.finished)

    def cancel(self) -> bool:
        """Cancel every unfinished command; False if it had already finished."""
        return self._runtime.call(self._inner.cancel)

    def result(self, timeout: float | None = None) -> TracedResults:
        """The sinks' results; DeadlineExceeded after ``timeout`` (the request keeps running)."""
        results: TracedResults = self._runtime.run(self._inner.result(timeout))
        self._runtime.last_trace = results.trace
        return results

    def trace(self) -> Trace:
        return self._runtime.run(self._inner.trace())

    def as_completed(self, timeout: float | None = None) -> Iterator[tuple[str, Any]]:
        """Each command as it finishes; DeadlineExceeded if one takes over ``timeout`` to come."""
        index = 0
        while (item := self._runtime.run(self._inner.next_finished(index), timeout)) is not None:
            yield item
            index += 1


def submit_request(
    commands: Sequence[Command],
    *,
    timeout: float | None = None,
    return_all: bool = False,
    retries: int = DEFAULT_RETRIES,
) -> RequestHandle:
    """Send a DAG of commands and return at once a :class:`RequestHandle` on its progress.

    Arguments as for ``mpreg.request``; ``timeout`` is the request's deadline.
    """
    runtime, client = api._require()
    inner = runtime.run(
        client.submit_request(commands, timeout=timeout, return_all=return_all, retries=retries)
    )
    return RequestHandle(runtime, inner)


def put(value: Any) -> Future:
    """Store ``value`` in the cluster once; return a Future to pass to any number of calls.

    ``mpreg.submit("fit", mpreg.put(table), ...)`` sends the table to the
    node once, however many calls use it; each call takes it from there.
    ``put(value).result()`` is ``value`` (the driver keeps it too). The value
    is freed in the cluster when the last reference to the Future goes.
    Raises SerializationError if it cannot be pickled; the Future fails with
    StoreFull if the node has no room for it.
    """
    _, client = api._require()
    return client.put(value, threadsafe=True)  # pickled in this thread, sent by the loop


def last_trace() -> Trace:
    """The trace of this process's last ``request(..., trace=True)`` or handle ``result()``."""
    runtime, _ = api._require()
    trace: Trace | None = runtime.last_trace
    if trace is None:
        raise MpregError("no traced request yet: call mpreg.request(..., trace=True)")
    return trace


def functions(*, timeout: float | None = STATUS_TIMEOUT) -> list[FunctionInfo]:
    """Every function the cluster serves: with which datasets, how many processes, which nodes."""
    return functions_of(api.cluster_status(timeout=timeout))


def datasets(*, timeout: float | None = STATUS_TIMEOUT) -> list[DatasetInfo]:
    """Every dataset the cluster holds: the functions run there, how many processes, which nodes."""
    return datasets_of(api.cluster_status(timeout=timeout))
