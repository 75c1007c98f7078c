"""Owned background tasks: every task mpreg starts has an owner that can stop it.

A :class:`TaskSet` keeps a strong reference to each task it starts (asyncio
keeps only weak ones), logs a task that fails instead of letting the failure
vanish, and cancels and awaits whatever is left when its owner closes.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from typing import Any

log = logging.getLogger(__name__)


class TaskSet:
    """The tasks of one owner (a node, a worker, a supervisor); ``what`` names it in logs."""

    def __init__(self, what: str) -> None:
        self.what = what
        self._tasks: set[asyncio.Task[Any]] = set()

    def __len__(self) -> int:
        return len(self._tasks)

    def __repr__(self) -> str:
        return f"<TaskSet {self.what} running={len(self._tasks)}>"

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        """Start ``coro`` as a task this set owns until it ends."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("%s: task failed", self.what, exc_info=task.exception())

    async def close(self) -> None:
        """Cancel every task still running and wait for all of them to end."""
        if not self._tasks:
            return
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        log.debug("%s: cancelled %d tasks", self.what, len(tasks))
        await asyncio.gather(*tasks, return_exceptions=True)
