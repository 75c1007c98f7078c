"""Collecting for the dashboard: the only part of it that talks to the cluster."""

from __future__ import annotations

import asyncio
import time

from rich.console import Console
from rich.live import Live

from mpreg.client import Client
from mpreg.dashboard.draw import render_top
from mpreg.dashboard.snapshot import Snapshot, build_snapshot
from mpreg.errors import ClusterUnavailable, MpregError
from mpreg.status import ClusterStatus

SAMPLE_TIMEOUT = 5.0


class Collector:
    """Samples the cluster through one client, reconnecting after a failure."""

    def __init__(self, address: str, token: str | None) -> None:
        self.address = address
        self.token = token
        self._client: Client | None = None
        self._last: Snapshot | None = None

    async def sample(self) -> Snapshot:
        """The next snapshot; on failure the last one's rows with ``error`` set."""
        try:
            async with asyncio.timeout(SAMPLE_TIMEOUT):
                if self._client is None or not self._client.connected:
                    await self.close()
                    client = Client(self.address, token=self.token, name="mpreg-top")
                    await client.connect()
                    self._client = client
                status = await self._client.status()
        except (MpregError, OSError, TimeoutError) as exc:
            await self.close()
            last = self._last or Snapshot(self.address, time.time())
            message = str(exc) or type(exc).__name__
            return Snapshot(last.source, time.time(), last.nodes, last.endpoints, error=message)
        self._last = build_snapshot(
            status, source=self.address, now=time.time(), previous=self._last
        )
        return self._last

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await client.close()


async def fetch_status(address: str, token: str | None) -> ClusterStatus:
    """One status reply from the node at ``address``; raises if it cannot be reached."""
    try:
        async with asyncio.timeout(SAMPLE_TIMEOUT):
            async with Client(address, token=token, name="mpreg-status") as client:
                return await client.status()
    except TimeoutError:
        raise ClusterUnavailable(f"no status from {address} within {SAMPLE_TIMEOUT:g}s") from None


async def run_top(
    address: str, token: str | None, *, console: Console, interval: float = 1.0, once: bool = False
) -> None:
    """Draw the live dashboard every ``interval`` seconds until cancelled.

    ``once`` draws a single frame after one interval (so rates are known).
    """
    collector = Collector(address, token)
    try:
        first = await collector.sample()
        if first.error and not first.nodes:
            raise ClusterUnavailable(first.error)
        if once:
            await asyncio.sleep(interval)
            console.print(render_top(await collector.sample()))
            return
        with Live(
            render_top(first), console=console, auto_refresh=False, screen=console.is_terminal
        ) as live:
            next_tick = time.monotonic()
            while True:
                next_tick += interval
                await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
                live.update(render_top(await collector.sample()), refresh=True)
    finally:
        await collector.close()
