"""Where one large incoming frame lands: pages claimed as its bytes arrive.

An anonymous private mapping of the frame's announced length: the kernel
backs a page only once a byte is written to it, so a peer that announces
100 MiB and sends 1 MiB makes this process hold 1 MiB, and the whole region
goes back to the system (munmap) when the last view of it is dropped. A
bytearray would be zero-filled up front (every page touched at once), and a
growing one is copied on every resize and left to malloc, which may keep its
pages after the free.
"""

from __future__ import annotations

import contextlib
import mmap

Buffer = bytes | bytearray | memoryview


class Landing:
    """``size`` bytes filled in order; ``rest()`` is where the next bytes go."""

    __slots__ = ("filled", "kind", "nbufs", "view")

    def __init__(self, size: int, kind: int, nbufs: int) -> None:
        region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
        with contextlib.suppress(AttributeError, OSError):
            # 2 MiB pages where the kernel allows them on request: a 100 MiB frame
            # costs ~50 page faults instead of ~25,600.
            region.madvise(mmap.MADV_HUGEPAGE)
        self.view = memoryview(region)
        self.filled = 0
        self.kind = kind
        self.nbufs = nbufs

    def __len__(self) -> int:
        return len(self.view)

    @property
    def complete(self) -> bool:
        return self.filled == len(self.view)

    def rest(self) -> memoryview:
        """The unfilled part, for a transport to read straight into."""
        return self.view[self.filled :]

    def take(self, data: Buffer) -> int:
        """Copy what fits of ``data``; return how many bytes were taken."""
        n = min(len(data), len(self.view) - self.filled)
        self.view[self.filled : self.filled + n] = memoryview(data)[:n]
        self.filled += n
        return n
