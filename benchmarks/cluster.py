"""A cluster of node processes that a synchronous driver (``mpreg.init(address)``) can use.

``mpreg.testing.run_cluster`` is an async context manager, while the sync API
must be called from a thread that runs no event loop. The cluster's own loop
(which owns the node processes' pipes) therefore runs in a background thread,
and this process's main thread is free to call ``mpreg.init`` /
``mpreg.request`` / ``mpreg.submit`` like a user's script does.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from mpreg.config import NodeConfig
from mpreg.host.cluster import LocalCluster
from mpreg.transport.loop import new_event_loop

T = TypeVar("T")
START_TIMEOUT = 120.0


class ThreadCluster:
    """``with ThreadCluster(config) as c: mpreg.init(c.address, token=c.token)``."""

    def __init__(self, *configs: NodeConfig) -> None:
        self.configs = configs or (NodeConfig(),)
        self.cluster = LocalCluster()
        self._loop = new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="bench-cluster", daemon=True
        )

    @property
    def address(self) -> str:
        return self.cluster.address

    @property
    def token(self) -> str:
        return self.cluster.token

    @property
    def node_pid(self) -> int:
        return self.cluster.nodes[0].pid

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(START_TIMEOUT)

    def __enter__(self) -> ThreadCluster:
        self._thread.start()
        try:
            for config in self.configs:
                self._run(self.cluster.add_node(config))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            if self.cluster.nodes:
                self._run(self.cluster.stop())
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            if not self._thread.is_alive():
                self._loop.close()
