"""Tests for mpreg.host.announce: the node's start-up line, written and read back."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import pytest

from mpreg.host.announce import Announce, read_announce


@pytest.fixture
def pipe() -> Iterator[tuple[int, int]]:
    r, w = os.pipe()
    yield r, w
    for fd in (r, w):
        with contextlib.suppress(OSError):  # a test may have closed it already
            os.close(fd)


def test_a_ready_line_round_trips() -> None:
    ready = Announce("127.0.0.1:4000", "node-1", 4242)
    assert Announce.parse(ready.line()) == ready


def test_an_error_line_round_trips() -> None:
    failed = Announce(
        error="OSError: address in use", reason="address_in_use", message="in use", errno=98
    )
    assert Announce.parse(failed.line()) == failed
    # An older node's line, with the text only, still reads as a failure.
    assert Announce.parse('{"error": "boom"}') == Announce(error="boom")


@pytest.mark.parametrize("line", ["", "not json", "[1, 2]", '{"other": 1}'])
def test_an_empty_or_garbled_line_is_no_announce(line: str) -> None:
    assert Announce.parse(line) is None


def test_read_announce_reads_the_first_line(pipe: tuple[int, int]) -> None:
    r, w = pipe
    os.write(w, (Announce("127.0.0.1:1", "n", 7).line() + "\nlater output\n").encode())
    assert read_announce(r, timeout=5.0) == Announce("127.0.0.1:1", "n", 7)


def test_read_announce_is_none_when_the_writer_closes_without_a_line(
    pipe: tuple[int, int],
) -> None:
    r, w = pipe
    os.close(w)
    assert read_announce(r, timeout=5.0) is None


def test_read_announce_times_out_when_nothing_comes(pipe: tuple[int, int]) -> None:
    r, _ = pipe
    with pytest.raises(TimeoutError):
        read_announce(r, timeout=0.05)
