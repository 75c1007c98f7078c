"""Tests for mpreg.processes: stopping asyncio child processes, escalating past a grace."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys
from collections.abc import AsyncIterator

import pytest

from mpreg.processes import Process, stop_processes

pytestmark = pytest.mark.cluster  # these start (tiny) processes

IGNORES_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)  # ok-sleep: a child that waits to be killed\n"
)
SLEEPS = (
    "import time\n"
    "print('ready', flush=True)\n"
    "time.sleep(60)  # ok-sleep: a child that waits to be killed\n"
)
EXITS_ON_STDIN_CLOSE = "import sys\nprint('ready', flush=True)\nsys.stdin.read()\n"


@pytest.fixture
async def started() -> AsyncIterator[list[Process]]:
    """Processes a test starts; any left running are killed at the end."""
    procs: list[Process] = []
    yield procs
    for proc in procs:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()


async def spawn(procs: list[Process], code: str) -> Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", code, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    procs.append(proc)
    assert proc.stdout is not None
    async with asyncio.timeout(30):
        assert await proc.stdout.readline() == b"ready\n"  # its signal handler is set
    return proc


async def test_processes_that_exit_within_the_grace_are_not_signalled(
    started: list[Process],
) -> None:
    proc = await spawn(started, EXITS_ON_STDIN_CLOSE)
    assert proc.stdin is not None
    proc.stdin.close()
    async with asyncio.timeout(30):
        assert await stop_processes([proc], grace=20.0, what="child") == []
    assert proc.returncode == 0


async def test_a_straggler_gets_sigterm_and_it_is_logged(
    started: list[Process], caplog: pytest.LogCaptureFixture
) -> None:
    proc = await spawn(started, SLEEPS)
    with caplog.at_level(logging.WARNING, logger="mpreg.processes"):
        async with asyncio.timeout(30):
            assert await stop_processes([proc], grace=0.1, what="child") == [proc]
    assert proc.returncode == -signal.SIGTERM
    assert f"child pid={proc.pid} did not stop within 0.1s; sending SIGTERM" in caplog.text


async def test_one_that_ignores_sigterm_is_killed(started: list[Process]) -> None:
    stubborn = await spawn(started, IGNORES_SIGTERM)
    polite = await spawn(started, SLEEPS)
    async with asyncio.timeout(30):
        signalled = await stop_processes([stubborn, polite], grace=0.1, what="child")
    assert signalled == [stubborn, polite]
    assert stubborn.returncode == -signal.SIGKILL
    assert polite.returncode == -signal.SIGTERM


async def test_the_escalation_can_go_straight_to_sigkill(started: list[Process]) -> None:
    proc = await spawn(started, SLEEPS)
    async with asyncio.timeout(30):
        await stop_processes([proc], grace=0.1, what="child", escalate=(signal.SIGKILL,))
    assert proc.returncode == -signal.SIGKILL
