"""Refused connections are logged in full a few times per source, then summarised."""

from __future__ import annotations

import asyncio
import logging

import pytest

from mpreg.transport.refusals import RefusalLog, source_host


async def _wait_for(caplog: pytest.LogCaptureFixture, text: str) -> None:
    async with asyncio.timeout(5):
        while not any(text in r.getMessage() for r in caplog.records):
            await asyncio.sleep(0.02)  # ok-sleep: the summary comes on the limiter's timer


async def test_a_flood_from_one_host_is_a_few_lines_and_one_summary(
    caplog: pytest.LogCaptureFixture,
) -> None:
    logger = logging.getLogger("test.refusals")
    limiter = RefusalLog(logger, interval=0.3, burst=3)
    with caplog.at_level(logging.WARNING, logger="test.refusals"):
        for i in range(1000):
            limiter.refused("127.0.0.9", "not mpreg" if i % 10 else "handshake timed out", f"#{i}")
        limiter.refused("127.0.0.2", "bad handshake", "other host")
        await _wait_for(caplog, "1,000 connections from 127.0.0.9 refused in the last 0.3 s")
    lines = [r.getMessage() for r in caplog.records]
    full = [line for line in lines if line.startswith("connection from 127.0.0.9")]
    assert len(full) == 3
    assert "#0" in full[0] and "handshake timed out" in full[0]
    summary = [line for line in lines if "connections from" in line]
    assert summary == [
        "1,000 connections from 127.0.0.9 refused in the last 0.3 s "
        "(not mpreg: 900, handshake timed out: 100); the first 3 are logged above"
    ]
    # A host under the burst is logged in full and never summarised.
    assert [line for line in lines if "127.0.0.2" in line] == [
        "connection from 127.0.0.2 refused (bad handshake): other host"
    ]
    assert len(lines) == 5


async def test_a_new_window_logs_in_full_again(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.refusals.window")
    limiter = RefusalLog(logger, interval=0.2, burst=1)
    with caplog.at_level(logging.WARNING, logger="test.refusals.window"):
        limiter.refused("h", "not mpreg", "first")
        limiter.refused("h", "not mpreg", "second")
        await _wait_for(caplog, "2 connections from h refused")
        limiter.refused("h", "not mpreg", "third")
    assert [r.getMessage().rpartition(": ")[2] for r in caplog.records][-1] == "third"


def test_source_host_drops_the_port() -> None:
    assert source_host("127.0.0.1:4242") == "127.0.0.1"
    assert source_host("[::1]:4242") == "::1"
    assert source_host("") == ""
