"""Values held in the cluster: ``put`` stores one there, fetching brings results here.

A future's result of at least ``HOLD_FROM_BYTES`` (:mod:`mpreg.node.store`)
stays on the node that made it for the client: its TaskDone says only how big
it is, and the future is done with its value still *held*. Asking for the
value (``result()``, ``mpreg.get``, ``await``) sends one ``Fetch`` for every
held future asked for at once, and the node answers each with a TaskDone
carrying the value. A result nobody asks for never crosses the driver's
connection; passing the future to another call uses it where it is.

``put(value)`` (:mod:`mpreg.driver.submitting`) sends the value to the node
once, under a task id of the client's session: a Future that any number of
calls can take as an argument.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Protocol

from mpreg.driver.futures import Future
from mpreg.driver.requests import TaskIds
from mpreg.errors import ClusterUnavailable, SerializationError
from mpreg.protocol.codec import loads_value
from mpreg.protocol.failures import from_info
from mpreg.protocol.messages import Fetch, TaskDone
from mpreg.transport.connection import Connection, ConnState


class HeldHost(Protocol):
    """What putting and fetching need of the :class:`~mpreg.driver.client.Client`."""

    _task_ids: TaskIds
    _waiting: dict[int, Any]

    @property
    def generation(self) -> int: ...

    @property
    def _conn(self) -> Connection | None: ...

    def _send_future(self, future: Future) -> None: ...


class Fetches:
    """The held results one client has asked its node for, by task id."""

    def __init__(self, host: HeldHost) -> None:
        self._host = host
        self._asked: dict[int, tuple[Future, asyncio.Future[None]]] = {}
        self.loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<Fetches asked={len(self._asked)}>"

    def __bool__(self) -> bool:
        return bool(self._asked)

    async def fetch(self, futures: Iterable[Future]) -> None:
        """Bring the held values of ``futures`` here: one Fetch for all; on the client's loop.

        Each future then has its value, or the error that kept it from
        coming (ClusterUnavailable: the node that held it is gone).
        """
        host = self._host
        loop = asyncio.get_running_loop()
        conn = host._conn
        waits: list[asyncio.Future[None]] = []
        ask: list[int] = []
        for future in futures:
            if not future._is_held():
                continue
            asked = self._asked.get(future.task_id)
            if asked is not None:
                waits.append(asked[1])
                continue
            if conn is None or conn.state is not ConnState.OPEN:
                future._fetched(None, _lost(future, "its node is not connected"))
            elif future.generation != host.generation:
                future._fetched(None, _lost(future, "the client has since moved to another node"))
            else:
                arrived = loop.create_future()
                self._asked[future.task_id] = (future, arrived)
                ask.append(future.task_id)
                waits.append(arrived)
        if ask:
            assert conn is not None
            conn.send(Fetch(tuple(ask)))
        for arrived in waits:
            await asyncio.shield(arrived)  # another caller may wait on the same answer

    def fetch_soon(self, futures: Sequence[Future]) -> concurrent.futures.Future[None]:
        """:meth:`fetch` from any thread but the client's loop's; wait on what it returns."""
        loop = self.loop
        if loop is None or loop.is_closed():
            raise ClusterUnavailable("the client is closed: its held results are gone")
        return asyncio.run_coroutine_threadsafe(self.fetch(list(futures)), loop)

    def on_done(self, message: TaskDone) -> bool:
        """A TaskDone nobody else waits for: True if it answers a fetch."""
        asked = self._asked.pop(message.task_id, None)
        if asked is None:
            return False
        future, arrived = asked
        if message.error is not None:
            future._fetched(None, from_info(message.error, message.where))
        elif message.result is not None:
            try:
                value = loads_value(message.result, what=f"the result of {future.command!r}")
            except SerializationError as exc:
                future._fetched(None, exc)
            else:
                future._fetched(value, None)
        if not arrived.done():
            arrived.set_result(None)
        return True

    def fail_all(self, why: Callable[[Future], BaseException]) -> None:
        """The node went away: every value asked for is lost with it."""
        asked, self._asked = self._asked, {}
        for future, arrived in asked.values():
            future._fetched(None, why(future))
            if not arrived.done():
                arrived.set_result(None)


def lost_with(node: str) -> Callable[[Future], BaseException]:
    """The error of a held result whose node the client lost."""
    return lambda f: ClusterUnavailable(f"lost node {node}, which held the result of {f.command}")


def _lost(future: Future, why: str) -> ClusterUnavailable:
    return ClusterUnavailable(
        f"the result of {future.command} was held on the node that made it, and {why}; "
        "submit the call again"
    )


def held_futures(futures: Iterable[Future]) -> list[Future]:
    """Those of ``futures`` whose values are still in the cluster."""
    return [f for f in futures if f._is_held()]
