"""Lane futures that calls through the node use: waited for, then given to the node.

A future whose call went on a lane (:mod:`mpreg.driver.lanes`) has its value
here, in the driver, not on the node. A call through the node that takes it
as an argument (a ``submit`` of a future that uses it, a DAG request) first
waits for it if it still runs, then gives the node its value once: a ``Put``
under its task id makes it a held value of the session like any other.
A big result a lane sent to the node (``Kept``) is there already.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Protocol

from mpreg.driver.arguments import own_future_id
from mpreg.driver.futures import LANE, Future
from mpreg.errors import MpregError
from mpreg.protocol.codec import dumps_value
from mpreg.protocol.messages import Put

WAITING = "waiting"  # Future.lane of a call that waits for lane futures it uses


class DepsOwner(Protocol):
    """What the lane dependencies need of the :class:`~mpreg.driver.client.Client`."""

    @property
    def generation(self) -> int: ...

    def _send_future(self, future: Future) -> None: ...

    def _send_notice(self, message: object) -> None: ...


class LaneDeps:
    """The lane futures of one client that its calls through the node use."""

    def __init__(self, owner: DepsOwner) -> None:
        self._owner = owner
        self._waits: list[Future] = []  # lane futures the request being planned uses

    def __repr__(self) -> str:
        return f"<LaneDeps waits={len(self._waits)}>"

    def unfinished(self, futures: Iterable[Future]) -> list[Future]:
        """The lane futures among ``futures`` that are not done yet."""
        return [f for f in futures if f.generation == LANE and not f.done()]

    def promote(self, futures: Iterable[Future]) -> None:
        """Give the node the values of finished lane futures a call through it will use.

        A lane future's value is here, not on the node: a ``Put`` under its
        task id makes it a held value of the session like any other (once per
        future). Failed or cancelled ones are left: the planner or
        :func:`~mpreg.driver.failover.spec_to_send` raises their error.
        """
        for future in futures:
            if future.generation != LANE or not future.done() or future._error is not None:
                continue
            if future.cancelled():
                continue
            if future._is_held():  # its big value went to the node (Kept): nothing to give
                future.generation = self._owner.generation
                continue
            try:
                blob = dumps_value(future._value, what=f"the result of {future.command}")
            except MpregError:
                continue  # cannot be: it arrived pickled; the dependent fails where it uses it
            self._owner._send_notice(Put(future.task_id, blob))
            future.generation = self._owner.generation

    def future_id(self, value: object) -> int | None:
        """A lane future a request uses: its task id (its value goes to the node first);
        None for any other value. Raises the error of a lane future that failed."""
        if type(value) is not Future or value.generation != LANE:
            return None
        own_future_id(self._owner, value)  # type: ignore[arg-type]  # PlanError: another client's
        if not value.done():
            self._waits.append(value)  # awaited by deps_ready before the request goes
            return value.task_id
        if value.cancelled():
            raise value._cancelled_error()
        if value._error is not None:
            raise value._error
        self.promote([value])
        return value.task_id

    async def deps_ready(self) -> None:
        """Wait for the running lane futures the request just planned uses; then to the node."""
        waits, self._waits = self._waits, []
        for future in waits:
            with contextlib.suppress(Exception):
                await future
            if future.cancelled():
                raise future._cancelled_error()
            if future._error is not None:
                raise future._error
        self.promote(waits)

    def after(self, waits: list[Future], future: Future) -> None:
        """Send ``future`` (through the node) once the lane futures it uses are done."""
        future.lane = WAITING
        left = [len(waits)]
        loop = asyncio.get_running_loop()

        def one_done(_: Future) -> None:
            left[0] -= 1
            if left[0] == 0 and future.lane is WAITING:
                future.lane = None
                if not future.done():
                    self._owner._send_future(future)

        for wait in waits:
            # A lane future may be settled by a cancel in the user's thread.
            wait.add_done_callback(lambda f: loop.call_soon_threadsafe(one_done, f))
