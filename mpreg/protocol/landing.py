"""Where one large incoming frame lands: pages claimed as its bytes arrive, regions reused.

A region is an anonymous private mapping: the kernel backs a page only once a
byte is written to it, so a peer that announces 100 MiB and sends 1 MiB makes
this process hold 1 MiB, and a region goes back to the system (munmap) when
it is dropped. A bytearray would be zero-filled up front (every page touched
at once), and a growing one is copied on every resize and left to malloc.

Fresh pages cost more than the copy into them (a 100 MB frame: ~110 ms into
fresh pages, ~45 ms into pages already mapped, on this machine class), so
regions whose frames are gone are kept for the next large frame: at most
``POOL_BYTES`` of them, an idle one for at most ``IDLE_SECONDS``. A region is
free when nothing views it any more: a frame's buffers, the values unpickled
from them (a numpy array keeps its buffer), a write still queued. CPython
counts those references on the mapping itself, so the pool reads the count.
A frame that never completed (its connection closed or stalled) is unmapped
at once, never kept.
"""

from __future__ import annotations

import contextlib
import mmap
import sys
import threading
import time

Buffer = bytes | bytearray | memoryview

POOL_BYTES = 512 * 1024 * 1024  # mapped regions kept for reuse, busy or idle, per process
IDLE_SECONDS = 30.0  # an unused region is unmapped at the next take() or trim() after this
_PAGE = 2 * 1024 * 1024  # sizes rounded to huge pages: one region serves close sizes


class _Pool:
    """Regions this process may reuse; thread-safe (a driver's sync calls use one)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._regions: dict[mmap.mmap, float] = {}  # region -> when it was last handed out
        self._bytes = 0

    def take(self, size: int) -> mmap.mmap:
        now = time.monotonic()
        need = -(-size // _PAGE) * _PAGE
        with self._lock:
            self._trim(now)
            for region in self._regions:
                # Three references when free: the dict's key, this loop, the argument.
                if need <= len(region) <= 2 * need and sys.getrefcount(region) == 3:
                    self._regions[region] = now
                    return region
            region = _map(need)
            if self._bytes + len(region) <= POOL_BYTES:
                self._regions[region] = now
                self._bytes += len(region)
            return region

    def discard(self, region: mmap.mmap) -> None:
        """Unmap ``region`` now (its frame never completed; its views are released)."""
        with self._lock:
            if self._regions.pop(region, None) is not None:
                self._bytes -= len(region)
        with contextlib.suppress(BufferError):  # still viewed: unmapped when dropped
            region.close()

    def trim(self) -> None:
        with self._lock:
            self._trim(time.monotonic())

    def _trim(self, now: float) -> None:
        for region, used in list(self._regions.items()):
            if now - used > IDLE_SECONDS and sys.getrefcount(region) == 3:
                del self._regions[region]
                self._bytes -= len(region)
                region.close()

    @property
    def nbytes(self) -> int:
        return self._bytes


def _map(size: int) -> mmap.mmap:
    region = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    with contextlib.suppress(AttributeError, OSError):
        # 2 MiB pages where the kernel allows them on request: ~50 page faults
        # for 100 MiB instead of ~25,600.
        region.madvise(mmap.MADV_HUGEPAGE)
    return region


pool = _Pool()


class Landing:
    """``size`` bytes filled in order; ``rest()`` is where the next bytes go."""

    __slots__ = ("_region", "filled", "kind", "nbufs", "view")

    def __init__(self, size: int, kind: int, nbufs: int) -> None:
        self._region = pool.take(size)
        self.view = memoryview(self._region)[:size]
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

    def discard(self) -> None:
        """The frame will never complete: give its memory back now."""
        with contextlib.suppress(BufferError):  # a read into it still running: unmapped later
            self.view.release()
        pool.discard(self._region)
