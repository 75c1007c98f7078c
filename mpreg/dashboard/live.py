"""Collecting for the dashboard: the only part of it that talks to the cluster."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import time
from collections.abc import AsyncIterator

from rich.console import Console
from rich.live import Live

from mpreg.dashboard.draw import render_top
from mpreg.dashboard.keys import KeyReader
from mpreg.dashboard.snapshot import Snapshot, build_snapshot
from mpreg.dashboard.view import History, ViewState, press
from mpreg.driver.client import Client
from mpreg.errors import ClusterUnavailable, MpregError
from mpreg.status import ClusterStatus
from mpreg.transport.tls import TLSFiles

SAMPLE_TIMEOUT = 5.0


class Collector:
    """Samples the cluster through one client, reconnecting after a failure."""

    def __init__(self, address: str, token: str | None, tls: TLSFiles | None = None) -> None:
        self.address = address
        self.token = token
        self.tls = tls or TLSFiles()  # none: clear text (the caller read $MPREG_TLS_*)
        self._client: Client | None = None
        self._last: Snapshot | None = None

    async def sample(self) -> Snapshot:
        """The next snapshot; on failure the last one's rows with ``error`` set."""
        try:
            async with asyncio.timeout(SAMPLE_TIMEOUT):
                if self._client is None or not self._client.connected:
                    await self.close()
                    client = _client(self.address, self.token, "mpreg-top", self.tls)
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


def _client(address: str, token: str | None, name: str, tls: TLSFiles) -> Client:
    return Client(
        address, token=token, name=name, tls_cert=tls.cert, tls_key=tls.key, tls_ca=tls.ca
    )


async def fetch_status(
    address: str, token: str | None, tls: TLSFiles | None = None
) -> ClusterStatus:
    """One status reply from the node at ``address``; raises if it cannot be reached."""
    try:
        async with asyncio.timeout(SAMPLE_TIMEOUT):
            async with _client(address, token, "mpreg-status", tls or TLSFiles()) as client:
                return await client.status()
    except TimeoutError:
        raise ClusterUnavailable(f"no status from {address} within {SAMPLE_TIMEOUT:g}s") from None


class _StopOnSignal:
    """SIGINT and SIGTERM end the dashboard like a normal return, not as an error.

    Inside ``with``, either signal cancels the task that entered it; the
    cancellation is absorbed on the way out, so the caller can still print the
    last frame and exit 0 (``timeout 5 mpreg top > f`` sends SIGTERM).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.requested = False
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.current_task()
        self._installed: list[signal.Signals] = []

    def __enter__(self) -> _StopOnSignal:
        for sig in self.SIGNALS:
            # Not on Windows, nor outside the main thread: there the default handling stays.
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(sig, self._request)
                self._installed.append(sig)
        return self

    def _request(self) -> None:
        if not self.requested and self._task is not None:
            self.requested = True
            self._task.cancel()

    def __exit__(self, exc_type: type[BaseException] | None, *_: object) -> bool:
        for sig in self._installed:
            self._loop.remove_signal_handler(sig)
        if self.requested and exc_type is asyncio.CancelledError and self._task is not None:
            self._task.uncancel()
            return True
        return False


async def run_top(
    address: str,
    token: str | None,
    *,
    console: Console,
    interval: float = 1.0,
    once: bool = False,
    tls: TLSFiles | None = None,
) -> None:
    """Show the dashboard every ``interval`` seconds until ``q``, Ctrl-C or SIGTERM, then return.

    On a terminal the frame is redrawn in place, keys change the view (see
    :mod:`.view`) and the last frame stays on the screen at exit. Elsewhere (a
    pipe, a file) each frame is printed plain as it is taken, so
    ``mpreg top | head`` and ``timeout 5 mpreg top > f`` show frames.
    ``once`` prints a single frame after one interval (so rates are known).
    Raises ClusterUnavailable if the first sample fails; a reader that goes
    away raises BrokenPipeError out of the console, for the caller to end quietly.
    """
    collector = Collector(address, token, tls)
    last: Snapshot | None = None  # the frame on show
    live = False
    history = History()
    try:
        with _StopOnSignal():
            first = await collector.sample()
            if first.error and not first.nodes:
                raise ClusterUnavailable(first.error)
            last = first
            history.add(first)
            if once:
                await asyncio.sleep(interval)
                last = await collector.sample()
            elif console.is_terminal:
                live = True
                frame = _Frame(console, collector, history, first)
                try:
                    await frame.run(interval)
                finally:  # q, or Ctrl-C / SIGTERM cancelling the run
                    last = frame.snapshot
            else:
                console.print(render_top(first))
                async for snapshot in _every(interval, collector):
                    console.print()
                    console.print(render_top(snapshot))
                    last = snapshot
    finally:
        await collector.close()
    if (once or live) and last is not None:
        # The full screen is gone: leave the last frame (plain: the keys no longer work).
        console.print(render_top(last, history=history if live else None))


class _Frame:
    """The full-screen view: samples on a beat, keys redraw at once, ``q`` returns."""

    def __init__(
        self, console: Console, collector: Collector, history: History, first: Snapshot
    ) -> None:
        self.console = console
        self.collector = collector
        self.history = history
        self.snapshot = first
        self.view = ViewState()
        self._screen: Live | None = None

    def _draw(self) -> None:
        if self._screen is not None:
            self._screen.update(render_top(self.snapshot, self.view, self.history), refresh=True)

    async def _sample(self, interval: float) -> None:
        async for snapshot in _every(interval, self.collector):
            self.snapshot = snapshot
            self.history.add(snapshot)
            self._draw()

    async def run(self, interval: float) -> None:
        with (
            KeyReader() as keys,
            Live(console=self.console, auto_refresh=False, screen=True) as screen,
        ):
            self._screen = screen
            self._draw()
            sampler = asyncio.create_task(self._sample(interval))
            get: asyncio.Future[str] | None = None
            try:
                while not self.view.quit:
                    get = asyncio.ensure_future(keys.get())
                    await asyncio.wait({get, sampler}, return_when=asyncio.FIRST_COMPLETED)
                    if sampler.done():
                        sampler.result()  # the sampler never ends but by an error: raise it
                    self.view = press(self.view, get.result())
                    self._draw()
            finally:
                for task in (sampler, get):
                    if task is not None and not task.done():
                        task.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await task
                self._screen = None


async def _every(interval: float, collector: Collector) -> AsyncIterator[Snapshot]:
    """A sample every ``interval`` seconds, on a fixed beat, until cancelled."""
    next_tick = time.monotonic()
    while True:
        next_tick += interval
        await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
        yield await collector.sample()
