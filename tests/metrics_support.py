"""The actor the metrics tests count calls on (imported by name in node processes)."""

from __future__ import annotations

import mpreg


@mpreg.actor(datasets=["ledger"])
class Ledger:
    def step(self, i: int, fail: bool) -> int:
        if fail:
            raise ValueError(f"step {i} fails on purpose")
        return i
