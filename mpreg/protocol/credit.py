"""The consumer's side of a stream's credit: how much the producer may send, and when to say more.

Pure bookkeeping, no I/O. The producer may send ``granted - received`` more
items; the consumer holds ``received - consumed`` it has not taken yet.
Their sum never exceeds the window, so the producer never runs more than
``window`` items ahead of what the consumer took, and everything between
them (sockets, nodes, the consumer's buffer) holds at most that many.

The window shrinks for large items: at most ``window_bytes`` worth of them
(by their mean size so far, and at least one) may be ahead. So that sizes
are known before many items are asked for, the stream starts with credit for
one item and the rest of the window is granted when the consumer takes it
(one round trip). Credit is given back in batches of a quarter of the window
at least, not per item: one message per batch on every hop.
"""

from __future__ import annotations


class CreditWindow:
    """How many items a stream's consumer lets its producer send.

    ``window``: items at most ahead of the consumer; ``window_bytes``: the
    bytes those may come to, by the mean item size seen so far.
    """

    def __init__(self, window: int, window_bytes: int) -> None:
        if window < 1:
            raise ValueError(f"a stream's window must be at least 1 item, not {window}")
        self.window = window
        self.window_bytes = window_bytes
        self.granted = 1  # travels with the stream's start; the rest once its size is known
        self.received = 0
        self.consumed = 0
        self.received_bytes = 0

    def __repr__(self) -> str:
        return (
            f"<CreditWindow window={self.limit}/{self.window} granted={self.granted} "
            f"received={self.received} consumed={self.consumed}>"
        )

    @property
    def outstanding(self) -> int:
        """Items the producer may still send without more credit."""
        return self.granted - self.received

    @property
    def buffered(self) -> int:
        """Items received that the consumer has not taken yet."""
        return self.received - self.consumed

    @property
    def limit(self) -> int:
        """Items allowed ahead of the consumer now: the window, smaller for large items."""
        if not self.received_bytes:
            return self.window
        mean = self.received_bytes / self.received
        return max(1, min(self.window, int(self.window_bytes // mean)))

    def on_item(self, nbytes: int) -> None:
        """An item of ``nbytes`` arrived.

        Raises ValueError if the producer sent more than its credit (a broken peer).
        """
        if self.outstanding <= 0:
            raise ValueError(f"item {self.received + 1} arrived beyond the credit given")
        self.received += 1
        self.received_bytes += nbytes

    def take(self, count: int = 1) -> int:
        """The consumer took ``count`` items; returns the credit to grant now (0: not yet)."""
        if count > self.buffered:
            raise ValueError(f"took {count} items with {self.buffered} received")
        self.consumed += count
        free = self.limit - self.outstanding - self.buffered
        if free <= 0 or free < max(1, self.limit // 4):
            return 0
        self.granted += free
        return free
