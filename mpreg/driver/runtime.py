"""The sync facade's process-wide state: a loop in a background thread, the client on it.

:mod:`mpreg.driver.api` keeps one :class:`Runtime` per process (``mpreg.init``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, TypeVar

from mpreg.driver.client import Client
from mpreg.driver.sync_client import SyncClient
from mpreg.errors import DeadlineExceeded
from mpreg.host.cluster import LocalCluster
from mpreg.transport.loop import new_event_loop

T = TypeVar("T")


class Runtime:
    """The background loop thread, the client on it, and an embedded cluster if any."""

    def __init__(self) -> None:
        self.loop = new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="mpreg-client", daemon=True
        )
        self.thread.start()
        self.client: Client | None = None
        self.sync: SyncClient | None = None  # sync requests from the caller's thread
        self.last_where: dict[str, str] = {}
        self.last_trace: Any = None  # mpreg.last_trace() (mpreg.driver.extras)
        self.cluster: LocalCluster | None = None
        self.address = ""

    def run(self, coro: Coroutine[Any, Any, T], timeout: float | None = None) -> T:
        future = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise DeadlineExceeded(f"no answer within {timeout:g}s") from None
        except KeyboardInterrupt:
            future.cancel()  # the coroutine sees CancelledError; a request cancels its tasks
            raise

    def call(self, fn: Any, /, *args: Any, **kwargs: Any) -> Any:
        """Run a plain function on the loop thread (objects bound to the loop are made there)."""

        async def inner() -> Any:
            return fn(*args, **kwargs)

        return self.run(inner())

    def close(self) -> None:
        if self.sync is not None:
            self.sync.close()

        async def teardown() -> None:
            if self.client is not None:
                await self.client.close()
            if self.cluster is not None:
                await self.cluster.stop()

        try:
            self.run(teardown(), timeout=30)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=5)
            if not self.thread.is_alive():
                self.loop.close()
