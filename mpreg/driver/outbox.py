"""What the async client tells its node in passing: requests in flight, releases, cancels.

:class:`PendingRequest` is one ``Client.request`` waiting on its loop.
:class:`Outbox` batches the notices nobody waits for, ``Release`` (futures the
driver dropped) and ``Cancel`` (tasks it gave up on), into one message of each
per loop iteration: when thousands of deadlines pass or futures die together,
one message carries them all.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable

from mpreg.driver.requests import Collector
from mpreg.protocol.messages import Cancel, Release, SubmitBatch, TaskDone


class PendingRequest:
    """One request() in flight on the client's loop.

    It keeps its ``batch``: if the node is lost while it runs, the client may
    send it to another one (:func:`mpreg.driver.failover.resend_batch`).
    ``sent`` tells a request already out from one still waiting to go.
    """

    __slots__ = ("batch", "collector", "done", "sent")

    def __init__(
        self, collector: Collector, batch: SubmitBatch, loop: asyncio.AbstractEventLoop
    ) -> None:
        self.collector = collector
        self.batch = batch
        self.sent = False
        self.done: asyncio.Future[None] = loop.create_future()

    def on_done(self, message: TaskDone) -> None:
        if not self.done.done() and self.collector.on_done(message):
            self._settle()

    def fail(self, exc: BaseException) -> None:
        if not self.done.done():
            self.collector.fail(exc)
            self._settle()

    def _settle(self) -> None:
        error = self.collector.error
        if error is not None:
            self.done.set_exception(error)
        else:
            self.done.set_result(None)


class Outbox:
    """Releases and cancels for the node, sent once per loop iteration by ``send``.

    ``send`` is called on the loop's thread and may drop the message when the
    connection is gone (there is nothing left to release or cancel then; after
    a failover the new node has none of the old one's tasks either, and ignores
    the ids of those it never had).
    """

    def __init__(self, send: Callable[[object], None]) -> None:
        self._send = send
        self.loop: asyncio.AbstractEventLoop | None = None  # set once the client connects
        self._to_release: list[int] = []
        self._release_scheduled = False
        self._to_cancel: list[int] = []

    def release(self, task_id: int) -> None:
        """Free ``task_id``'s result on the node; callable from any thread (Future.__del__)."""
        self._to_release.append(task_id)
        loop = self.loop
        if loop is None or self._release_scheduled or loop.is_closed():
            return
        self._release_scheduled = True
        loop.call_soon_threadsafe(self._flush_releases)

    def cancel(self, task_ids: Iterable[int]) -> None:
        """Drop or cancel these tasks on the node; call it on the loop's thread."""
        before = len(self._to_cancel)
        self._to_cancel.extend(task_ids)
        if before or not self._to_cancel or self.loop is None:
            return
        self.loop.call_soon(self._flush_cancels)

    def _flush_releases(self) -> None:
        self._release_scheduled = False
        ids, self._to_release = self._to_release, []
        if ids:
            self._send(Release(tuple(ids)))

    def _flush_cancels(self) -> None:
        ids, self._to_cancel = self._to_cancel, []
        if ids:
            self._send(Cancel(tuple(ids)))
