"""What the suite measures: workloads, sizes, metrics and the issue's targets."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

SYSTEMS = ("mpreg", "floor", "ray", "dask")
PEERS = ("ray", "dask")  # need the bench dependency group

# --only names -> the workloads of the issue (cold start and RSS are measured
# while a system starts, so they cost nothing extra).
WORKLOADS = (
    "sync",
    "pipelined",
    "chain",
    "echo",
    "cold",
    "rss",
    "fanout",
    # issue 12: the sync API users call, many drivers, a chain on an actor
    "sync-request",
    "sync-pipelined",
    "nn",
    "chain-actor",
)


@dataclass(frozen=True, slots=True)
class Sizes:
    """How much work one repetition of one system does."""

    sync_calls: int = 2000
    pipelined_calls: int = 20_000
    in_flight: int = 100
    chain_calls: int = 300
    echo_small_bytes: int = 1 << 20
    echo_small_calls: int = 40
    echo_large_bytes: int = 10 << 20
    echo_large_calls: int = 10
    fanout_calls: int = 1000
    fanout_iters: int = 5
    sync_pipelined_calls: int = 20_000  # in batches of in_flight: submit them all, then get
    nn_calls: int = 5000  # per driver (4 drivers)
    warmup: int = 50
    settle_seconds: float = 2.0  # idle before RSS is read: let lazy start-up finish

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def labels(self) -> dict[str, str]:
        """The sizes as they read in a workload's title (``1 MiB``, ``100``)."""
        labels = {key: str(value) for key, value in self.to_dict().items()}
        labels.update(
            echo_small=fmt_size(self.echo_small_bytes), echo_large=fmt_size(self.echo_large_bytes)
        )
        return labels

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Sizes:
        return cls(**data)


def fmt_size(nbytes: int) -> str:
    """``1 MiB``, ``64 KiB``, ``1.5 MiB``, ``100 B``."""
    for unit, size in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= size:
            return f"{nbytes / size:g} {unit}"
    return f"{nbytes} B"


FULL = Sizes()
QUICK = Sizes(
    sync_calls=500,
    pipelined_calls=5000,
    chain_calls=100,
    echo_small_calls=15,
    echo_large_calls=4,
    fanout_iters=2,
    sync_pipelined_calls=5000,
    nn_calls=1250,
    warmup=20,
    settle_seconds=1.0,
)
TINY = Sizes(  # the smoke test: every code path, almost no time
    sync_calls=20,
    pipelined_calls=200,
    in_flight=20,
    chain_calls=5,
    echo_small_bytes=1 << 16,
    echo_small_calls=2,
    echo_large_bytes=1 << 20,
    echo_large_calls=1,
    fanout_calls=50,
    fanout_iters=1,
    sync_pipelined_calls=200,
    nn_calls=60,
    warmup=2,
    settle_seconds=0.2,
)

Kind = Literal["latency", "rate", "value"]
Better = Literal["lower", "higher"]


@dataclass(frozen=True, slots=True)
class Metric:
    """One row of the table.

    ``latency``: per-call samples; median = median over repetitions of each
    repetition's p50, p99 likewise. ``rate`` and ``value``: one number per
    repetition; median over repetitions and the worst repetition.
    """

    key: str
    workload: str
    title: str  # a template: {in_flight}, {echo_small}, ... name the run's Sizes.labels()
    unit: str
    kind: Kind
    better: Better
    scale: float  # stored value (seconds, bytes, calls/s) x scale = shown in unit

    def heading(self, sizes: Sizes) -> str:
        """The title with the sizes this run used (``2 pipelined, 100 in flight``)."""
        return self.title.format_map(sizes.labels())


METRICS = (
    Metric("sync_call", "sync", "1 sync small call", "us", "latency", "lower", 1e6),
    Metric("sync_call_async", "sync", "1 sync call, async API", "us", "latency", "lower", 1e6),
    Metric(
        "pipelined",
        "pipelined",
        "2 pipelined, {in_flight} in flight",
        "calls/s",
        "rate",
        "higher",
        1,
    ),
    Metric("chain3", "chain", "3 three-step chain", "ms", "latency", "lower", 1e3),
    Metric("echo_1mib", "echo", "4 {echo_small} numpy echo", "ms", "latency", "lower", 1e3),
    Metric("echo_10mib", "echo", "4 {echo_large} numpy echo", "ms", "latency", "lower", 1e3),
    Metric("cold_start", "cold", "5 cold start to 1st result", "s", "value", "lower", 1),
    Metric("idle_rss", "rss", "6 idle RSS, all processes", "MiB", "value", "lower", 1 / 2**20),
    Metric(
        "fanout", "fanout", "7 fan-out {fanout_calls} over 2 replicas", "ms", "value", "lower", 1e3
    ),
    Metric(
        "sync_request",
        "sync-request",
        "8 sync request to a cluster's actor",
        "us",
        "latency",
        "lower",
        1e6,
    ),
    Metric(
        "sync_pipelined",
        "sync-pipelined",
        "9 sync API, {in_flight} submits then get",
        "calls/s",
        "rate",
        "higher",
        1,
    ),
    Metric(
        "nn",
        "nn",
        "10 n:n, 4 drivers x own actor, {in_flight} per batch",
        "calls/s",
        "rate",
        "higher",
        1,
    ),
    Metric(
        "chain_actor", "chain-actor", "11 3-step chain on an actor", "ms", "latency", "lower", 1e3
    ),
)
METRIC_BY_KEY = {m.key: m for m in METRICS}


@dataclass(frozen=True, slots=True)
class Target:
    """mpreg's figure / a peer's figure must be at most (or at least) ``ratio``."""

    metric: str
    peer: str
    ratio: float
    strict: bool = False  # "below", not "at most"
    issue: int = 4  # the issue that set it (12 tightened some of issue 4's)

    @property
    def text(self) -> str:
        better = METRIC_BY_KEY[self.metric].better
        if self.strict:
            return f"{'<' if better == 'lower' else '>'} {self.peer}"
        return f"{'<=' if better == 'lower' else '>='} {self.ratio:g}x {self.peer}"

    def met(self, ratio: float) -> bool:
        better = METRIC_BY_KEY[self.metric].better
        if better == "lower":
            return ratio < self.ratio if self.strict else ratio <= self.ratio
        return ratio > self.ratio if self.strict else ratio >= self.ratio


TARGETS = (
    Target("sync_call", "ray", 0.3),
    Target("sync_call", "floor", 1.6),
    Target("pipelined", "ray", 15.0, issue=12),  # issue 4: 10x
    Target("pipelined", "floor", 0.4),
    Target("chain3", "ray", 0.25),
    Target("echo_1mib", "ray", 0.4, issue=12),  # issue 4: 0.5x
    Target("cold_start", "ray", 0.2),
    Target("cold_start", "dask", 1.0, strict=True),
    Target("idle_rss", "ray", 0.15, issue=12),  # issue 4: 0.2x
    Target("idle_rss", "dask", 1.0, strict=True),
    Target("sync_request", "ray", 0.25, issue=12),
    Target("sync_request", "floor", 1.6, issue=12),
    Target("sync_pipelined", "ray", 10.0, issue=12),
    Target("nn", "ray", 10.0, issue=12),
    Target("chain_actor", "ray", 0.2, issue=12),
)
