"""Generators the stream tests serve (imported by name in node processes)."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Iterator

import mpreg
from mpreg.status import rss_bytes


@mpreg.actor(datasets=["rows"])
class Rows:
    """Streams rows and says how far its last stream got (read through another call)."""

    def __init__(self) -> None:
        self.made = 0  # items the current stream's generator has made
        self.closed = 0  # streams whose generator's finally ran
        self.finished = 0  # streams that ran to their end

    def rows(self, count: int, size: int = 0, fail_at: int = -1) -> Iterator[tuple[int, bytes]]:
        self.made = 0
        try:
            for i in range(count):
                if i == fail_at:
                    raise ValueError(f"row {i} is bad")
                self.made = i + 1
                yield (i, b"x" * size)
            self.finished += 1
        finally:
            self.closed += 1

    async def arows(self, count: int) -> AsyncIterator[int]:
        self.made = 0
        try:
            for i in range(count):
                await asyncio.sleep(0)
                self.made = i + 1
                yield i
            self.finished += 1
        finally:
            self.closed += 1

    def forever(self, marker: str) -> Iterator[int]:
        """Never ends by itself; writes ``marker`` when closed."""
        i = 0
        try:
            while True:
                self.made = i + 1
                yield i
                i += 1
        finally:
            with open(marker, "w") as f:
                f.write(str(self.made))

    def slow_start(self, marker: str, count: int) -> Iterator[int]:
        """Its first run hangs before its first item (until killed); a retry streams at once."""
        if not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write(str(os.getpid()))
            time.sleep(60)  # ok-sleep: the test kills this process meanwhile
        yield from range(count)

    def returns_generator(self, count: int) -> Iterator[int]:
        """Not a generator function: it returns one."""
        return iter(x for x in range(count))

    def plain(self) -> int:
        return 1

    def progress(self) -> dict[str, int]:
        return {
            "made": self.made,
            "closed": self.closed,
            "finished": self.finished,
            "pid": os.getpid(),
            "rss": rss_bytes(os.getpid()),
        }


def count_up(count: int) -> Iterator[int]:
    """A plain-function generator."""
    yield from range(count)
