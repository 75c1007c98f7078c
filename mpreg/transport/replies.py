"""Request/reply correlation: one id per question, one future per id.

Both the node (asking peers for status) and the client (asking its node for
status or a deploy) send a message carrying a fresh request id and await the
:class:`~mpreg.protocol.messages.Reply` that carries it back.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from mpreg.protocol.messages import Reply


class PendingReplies:
    """Futures of the questions sent on one or more connections and not yet answered."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[Reply]] = {}

    def __len__(self) -> int:
        return len(self._waiting)

    @asynccontextmanager
    async def expect(self) -> AsyncIterator[tuple[int, asyncio.Future[Reply]]]:
        """A fresh request id and the future its Reply resolves; forgotten on exit."""
        rid = next(self._ids)
        future: asyncio.Future[Reply] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = future
        try:
            yield rid, future
        finally:
            self._waiting.pop(rid, None)

    def resolve(self, reply: Reply) -> None:
        """Hand ``reply`` to whoever awaits its id; a late or unknown reply is dropped."""
        future = self._waiting.pop(reply.request_id, None)
        if future is not None and not future.done():
            future.set_result(reply)

    def fail_all(self, exc: BaseException) -> None:
        """Every question still waiting raises ``exc`` (the connection is gone)."""
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(exc)
        self._waiting.clear()
