"""Blob: an opaque pickled value as it travels (a pickle stream and its buffers)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mpreg.protocol.frames import Buffer


class Blob:
    """An opaque pickled value: a pickle stream and its out-of-band buffers."""

    __slots__ = ("parts",)

    def __init__(self, parts: Sequence[Buffer]) -> None:
        self.parts = tuple(parts)

    @property
    def nbytes(self) -> int:
        return sum(memoryview(p).nbytes for p in self.parts)

    def __reduce__(self) -> Any:
        raise TypeError("a Blob travels only in a message field annotated Blob")

    def __repr__(self) -> str:
        return f"Blob({self.nbytes} bytes in {len(self.parts)} parts)"
