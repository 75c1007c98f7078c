"""Actors the fused-chain tests deploy (imported by name in node processes)."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path
from typing import Any

import mpreg


@mpreg.actor(datasets=["pipe"])
class Pipeline:
    """Steps of a chain on one actor; ``runs`` counts the steps this process ran."""

    def __init__(self) -> None:
        self.runs: list[str] = []

    def inc(self, x: int) -> int:
        self.runs.append("inc")
        return x + 1

    def dbl(self, x: int) -> int:
        self.runs.append("dbl")
        return 2 * x

    def dec(self, x: int) -> int:
        self.runs.append("dec")
        return x - 3

    async def ainc(self, x: int) -> int:
        await asyncio.sleep(0)
        self.runs.append("ainc")
        return x + 1

    def boom(self, x: int) -> int:
        raise ValueError(f"boom on {x}")

    def record(self, x: int) -> dict[str, Any]:
        return {"value": x, "rows": [x, x + 1], "pid": os.getpid()}

    def nap(self, x: int, seconds: float) -> int:
        time.sleep(seconds)  # ok-sleep: the workload is a slow step
        return x

    async def anap(self, x: int, seconds: float) -> int:
        await asyncio.sleep(seconds)  # ok-sleep: the workload is a slow async step
        self.runs.append("anap")
        return x

    def die_once(self, x: int, marker: str) -> int:
        """Kill this process with SIGKILL the first time (``marker`` does not exist yet)."""
        path = Path(marker)
        if not path.exists():
            path.write_text(str(os.getpid()))
            os.kill(os.getpid(), signal.SIGKILL)
        return x

    def history(self) -> dict[str, Any]:
        return {"pid": os.getpid(), "runs": list(self.runs)}


@mpreg.actor(datasets=["other"])
class Other:
    """A second actor: a chain through it crosses processes."""

    def neg(self, x: int) -> int:
        return -x
