"""The benchmark's user code declared for mpreg (importable by its worker processes)."""

from __future__ import annotations

import mpreg
from benchmarks import payload


@mpreg.actor(datasets=["model"])
class Model(payload.Model):
    """One dataset actor: the sync-call, pipelined and echo target."""


@mpreg.actor(datasets=["shards"], replicas=2)
class Shard(payload.Shard):
    """Two replicas the fan-out spreads over."""
