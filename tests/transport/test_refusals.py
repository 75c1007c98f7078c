"""Refused connections are logged in full a few times per source, then summarised."""

from __future__ import annotations

import asyncio
import logging

from mpreg.transport.refusals import RefusalLog, source_host


class _Lines(logging.Handler):
    """The messages logged, and an event for the one a test waits for."""

    def __init__(self, awaited: str) -> None:
        super().__init__()
        self.lines: list[str] = []
        self.awaited = awaited
        self.seen = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())
        if self.awaited in self.lines[-1]:
            self.seen.set()


def _limiter(name: str, awaited: str, interval: float, burst: int) -> tuple[RefusalLog, _Lines]:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.handlers[:] = [lines := _Lines(awaited)]
    return RefusalLog(logger, interval=interval, burst=burst), lines


async def test_a_flood_from_one_host_is_a_few_lines_and_one_summary() -> None:
    limiter, log = _limiter(
        "test.refusals.flood",
        "1,000 connections from 127.0.0.9 refused in the last 0.3 s",
        interval=0.3,
        burst=3,
    )
    for i in range(1000):
        limiter.refused("127.0.0.9", "not mpreg" if i % 10 else "handshake timed out", f"#{i}")
    limiter.refused("127.0.0.2", "bad handshake", "other host")
    async with asyncio.timeout(5):
        await log.seen.wait()
    full = [line for line in log.lines if line.startswith("connection from 127.0.0.9")]
    assert len(full) == 3
    assert "#0" in full[0] and "handshake timed out" in full[0]
    assert [line for line in log.lines if "connections from" in line] == [
        "1,000 connections from 127.0.0.9 refused in the last 0.3 s "
        "(not mpreg: 900, handshake timed out: 100); the first 3 are logged above"
    ]
    # A host under the burst is logged in full and never summarised.
    assert [line for line in log.lines if "127.0.0.2" in line] == [
        "connection from 127.0.0.2 refused (bad handshake): other host"
    ]
    assert len(log.lines) == 5


async def test_a_new_window_logs_in_full_again() -> None:
    limiter, log = _limiter("test.refusals.window", "2 connections from h", interval=0.2, burst=1)
    limiter.refused("h", "not mpreg", "first")
    limiter.refused("h", "not mpreg", "second")
    async with asyncio.timeout(5):
        await log.seen.wait()
    limiter.refused("h", "not mpreg", "third")
    assert [line.rpartition(": ")[2] for line in log.lines] == [
        "first",
        "2); the first 1 are logged above",
        "third",
    ]


def test_source_host_drops_the_port() -> None:
    assert source_host("127.0.0.1:4242") == "127.0.0.1"
    assert source_host("[::1]:4242") == "::1"
    assert source_host("") == ""
