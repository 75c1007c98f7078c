"""Keys from a real pseudo-terminal: cbreak while reading, the old modes back afterwards."""

from __future__ import annotations

import asyncio
import os
import socket
import termios
from collections.abc import Iterator

import pytest

from mpreg.dashboard import Collector
from mpreg.dashboard.keys import KeyReader


@pytest.fixture
def pty() -> Iterator[tuple[int, int]]:
    master, slave = os.openpty()
    try:
        yield master, slave
    finally:
        os.close(master)
        os.close(slave)


async def test_keys_arrive_one_at_a_time_and_the_terminal_is_restored(
    pty: tuple[int, int],
) -> None:
    master, slave = pty
    before = termios.tcgetattr(slave)
    assert before[3] & termios.ICANON
    with KeyReader(slave) as keys:
        assert keys.active
        during = termios.tcgetattr(slave)
        assert not during[3] & (termios.ICANON | termios.ECHO)  # no Enter needed, no echo
        assert during[3] & termios.ISIG  # Ctrl-C still interrupts
        os.write(master, b"s")
        assert await asyncio.wait_for(keys.get(), 5) == "s"
        os.write(master, b"\x1b[A")
        assert await asyncio.wait_for(keys.get(), 5) == "\x1b[A"
    assert termios.tcgetattr(slave) == before


async def test_the_terminal_is_restored_when_the_reader_is_left_by_an_error(
    pty: tuple[int, int],
) -> None:
    _, slave = pty
    before = termios.tcgetattr(slave)
    with pytest.raises(RuntimeError), KeyReader(slave):
        raise RuntimeError("boom")
    assert termios.tcgetattr(slave) == before


async def test_without_a_terminal_there_are_no_keys() -> None:
    read, write = os.pipe()
    try:
        with KeyReader(read) as keys:
            assert not keys.active
            os.write(write, b"q")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(keys.get(), 0.2)
    finally:
        os.close(read)
        os.close(write)


async def test_a_node_that_does_not_answer_is_a_snapshot_with_an_error_not_a_crash() -> None:
    with socket.socket() as sock:  # a closed loopback port: bound, never listening
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
        collector = Collector(address, token="t")
        try:
            snapshot = await collector.sample()
        finally:
            await collector.close()
    assert snapshot.error
    assert snapshot.nodes == ()
