"""What a node holds for its clients: kept results and put values, bounded in bytes.

A submitted call's result (a future's) and a ``put`` value stay on the node
that keeps the client's session until the driver releases them (drops its
last reference to the future) or the session ends. Every session of a node
counts them here, against ``NodeConfig.max_store_bytes``: a value that would
cross it is refused with a "store-full" error rather than held.
"""

from __future__ import annotations

from mpreg.protocol.held import HOLD_FROM_BYTES as HOLD_FROM_BYTES  # a smaller one is kept too
from mpreg.protocol.messages import ErrorInfo


class Store:
    """The bytes and values a node holds for its clients' futures."""

    __slots__ = ("bytes", "limit", "values")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.bytes = 0
        self.values = 0

    def __repr__(self) -> str:
        return f"<Store {self.values} values, {self.bytes:,} of {self.limit:,} bytes>"

    def admit(self, nbytes: int) -> bool:
        """Count a value of ``nbytes`` held; False (and nothing counted) if it does not fit."""
        if self.bytes + nbytes > self.limit:
            return False
        self.bytes += nbytes
        self.values += 1
        return True

    def free(self, nbytes: int) -> None:
        """A value counted by :meth:`admit` was let go."""
        self.bytes -= nbytes
        self.values -= 1

    def full(self, what: str, nbytes: int) -> ErrorInfo:
        """The error for a value of ``nbytes`` that :meth:`admit` refused."""
        return ErrorInfo(
            kind="store-full",
            message=(
                f"{what} ({nbytes:,} bytes) does not fit in the node's store: it holds "
                f"{self.bytes:,} of {self.limit:,} bytes for {self.values} futures; drop "
                "futures you no longer need, or raise the node's --max-store-mb"
            ),
            command=what,
        )
