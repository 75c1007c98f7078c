"""Rate-limited logging of refused connections: a flood of junk must not fill the disk.

Each refusal (a handshake that failed or timed out, bytes that are not
mpreg) is counted per source host in a window of ``INTERVAL`` seconds. The
first ``BURST`` of a window are logged in full; at the window's end one
summary line says how many there were::

    1,000 connections from 127.0.0.1 refused in the last 10 s (not mpreg: 990,
    handshake timed out: 10); the first 5 are logged above

So a source costs the log at most ``BURST + 1`` lines per window, however
fast it connects (measured before: 223 bytes per junk connection, 6.7 MB in
13 s). A window holds a handful of counters and ends with its timer, so a
host that stops connecting leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from dataclasses import dataclass, field

INTERVAL = 10.0  # seconds per window
BURST = 5  # refusals per source and window logged in full

log = logging.getLogger("mpreg.transport.refusals")


@dataclass(slots=True)
class _Window:
    started: float
    count: int = 0
    reasons: Counter[str] = field(default_factory=Counter)


class RefusalLog:
    """Logs refusals per source host: the first ``burst`` per window, then a summary."""

    def __init__(
        self,
        logger: logging.Logger = log,
        *,
        interval: float = INTERVAL,
        burst: int = BURST,
    ) -> None:
        self._log = logger
        self.interval = interval
        self.burst = burst
        self._windows: dict[str, _Window] = {}

    def __repr__(self) -> str:
        return f"<RefusalLog sources={len(self._windows)} interval={self.interval:g}s>"

    def refused(self, host: str, reason: str, detail: str) -> None:
        """A connection from ``host`` was refused for ``reason`` (a short phrase)."""
        now = time.monotonic()
        window = self._windows.get(host)
        if window is not None and now - window.started >= self.interval:
            self._close(host)  # its timer's loop has ended (a driver's loop may come and go)
            window = None
        if window is None:
            window = self._windows[host] = _Window(now)
            # The window ends on a timer: its summary is written even if the host goes quiet.
            asyncio.get_running_loop().call_later(self.interval, self._close, host, window)
        window.count += 1
        window.reasons[reason] += 1
        if window.count <= self.burst:
            self._log.warning("connection from %s refused (%s): %s", host, reason, detail)

    def _close(self, host: str, which: _Window | None = None) -> None:
        window = self._windows.get(host)
        if window is None or (which is not None and window is not which):
            return  # closed already, and a new window began
        del self._windows[host]
        if window.count <= self.burst:
            return  # every one was logged in full
        reasons = ", ".join(f"{why}: {n:,}" for why, n in window.reasons.most_common())
        self._log.warning(
            "%s connections from %s refused in the last %g s (%s); the first %d are logged above",
            f"{window.count:,}",
            host,
            self.interval,
            reasons,
            self.burst,
        )


def source_host(peer_address: str) -> str:
    """The host part of ``host:port`` (``[v6]:port`` too): refusals are counted per host."""
    host, sep, _port = peer_address.rpartition(":")
    return host.strip("[]") if sep else peer_address
