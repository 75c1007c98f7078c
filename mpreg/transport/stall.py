"""The stall timeout: a frame that stops arriving half-way holds memory for nothing.

Armed while a connection holds an incomplete frame; fires ``on_stall`` once
no byte arrived for ``timeout`` seconds. One timer per stalled stretch, not
per read: a read only records the loop time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class StallWatch:
    """Calls ``on_stall(idle seconds)`` when ``pending()`` stays non-zero without progress."""

    __slots__ = ("_loop", "_on_stall", "_pending", "_progress", "_timer", "timeout")

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        timeout: float,
        pending: Callable[[], int],
        on_stall: Callable[[float], None],
    ) -> None:
        self._loop = loop
        self.timeout = timeout
        self._pending = pending
        self._on_stall = on_stall
        self._progress = 0.0
        self._timer: asyncio.TimerHandle | None = None

    def progressed(self) -> None:
        """Bytes of an incomplete frame just arrived."""
        self._progress = self._loop.time()
        if self._timer is None:
            self._timer = self._loop.call_later(self.timeout, self._check)

    def cancel(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        if not self._pending():
            return  # the frame completed; the next incomplete one re-arms
        idle = self._loop.time() - self._progress
        if idle < self.timeout:
            self._timer = self._loop.call_later(self.timeout - idle, self._check)
        else:
            self._on_stall(idle)
