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


# Workload nn: driver k calls its own actor, the only one serving dataset nn{k}.
@mpreg.actor(datasets=["nn0"])
class Lane0(payload.Model):
    pass


@mpreg.actor(datasets=["nn1"])
class Lane1(payload.Model):
    pass


@mpreg.actor(datasets=["nn2"])
class Lane2(payload.Model):
    pass


@mpreg.actor(datasets=["nn3"])
class Lane3(payload.Model):
    pass


LANES = tuple(f"benchmarks.systems.mpreg_actors:Lane{k}" for k in range(4))
