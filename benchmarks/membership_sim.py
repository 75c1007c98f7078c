"""``uv run python -m benchmarks.membership_sim [--members 100,1000,10000] [--loss 0.01]``

Runs the node's own SWIM core (:class:`mpreg.membership.Swim`) for N members
over a simulated network: one event queue on a simulated clock, a latency per
message (0.5-2 ms), random loss, optional partitions and process kills. The
simulator plays each node's part: it ticks every core each ``tick_interval``,
carries Sends (a message to a killed member is lost), closes a pair's link
when one side declares the other DEAD (telling the other side
``link_closed``) and re-dials (``linked``, with Sync) when it comes back.

Members start converged from one shared :class:`~mpreg.membership.Baseline`
(copy-on-write: each core stores only what differs), so 10,000 members fit.
For each N it reports: rounds (probe intervals) and seconds for a new advert to
reach every member, with Push on (what the node runs) and off (piggyback
gossip alone, the epidemic whose rounds grow as log N); the same for a death,
from the kill to the last member marking it DEAD; false suspicions and false
deaths under loss over a steady window; and gossip bytes per member per
second (``len(pickle.dumps(message))`` of every message sent in that window).
"""

from __future__ import annotations

import argparse
import heapq
import math
import pickle
import random
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, fields, replace

from mpreg.membership import (
    AdvertChanged,
    Baseline,
    Instruction,
    MemberChanged,
    MemberInfo,
    MemberState,
    PingReq,
    Send,
    Swim,
    SwimConfig,
)

_BUCKETS = 8  # tick phases per tick interval: members tick in 8 staggered groups
_DELIVER, _TICK = 0, 1
ALIVE, SUSPECT, DEAD = MemberState.ALIVE, MemberState.SUSPECT, MemberState.DEAD


class Sim:
    """N Swim cores on one simulated clock. Members are numbered; node ids are ``n<i>``."""

    def __init__(
        self,
        members: int,
        *,
        config: SwimConfig,
        loss: float = 0.0,
        seed: int = 1,
        latency: tuple[float, float] = (0.0005, 0.002),
    ) -> None:
        self.config = config
        self.loss = loss
        self.latency = latency
        self.now = 0.0
        self.rng = random.Random(seed)
        infos = [MemberInfo(f"n{i}", f"n{i}", f"127.0.0.1:{10000 + i}") for i in range(members)]
        adverts: dict[str, tuple[int, object]] = {
            info.node_id: (1, ("f", "g", f"dataset-{i}")) for i, info in enumerate(infos)
        }
        baseline = Baseline(infos, adverts)
        self.infos = infos
        self.index = {info.node_id: i for i, info in enumerate(infos)}
        self.cores = [
            Swim(info, config=config, rng=random.Random(seed * 1_000_003 + i), baseline=baseline)
            for i, info in enumerate(infos)
        ]
        self.killed: set[int] = set()
        self.group: dict[int, int] = {}  # partitions: member -> group; absent: group 0
        self.closed: set[tuple[int, int]] = set()  # (a, b), a < b: links closed by a death
        self.on_change: Callable[[int, MemberChanged], None] | None = None
        self.on_advert: Callable[[int, AdvertChanged], None] | None = None
        self.count_bytes = False
        self.bytes = 0
        self.messages = 0
        self.indirect = 0  # PingReq rounds: a probe's direct Ping went unanswered
        self._queue: list[tuple[float, int, int, int, object]] = []
        self._order = 0
        self._last_req: dict[int, int] = {}  # member -> seq of its last PingReq round
        self._tick_groups: list[list[int]] = [[] for _ in range(_BUCKETS)]
        for i in range(members):
            self._tick_groups[self.rng.randrange(_BUCKETS)].append(i)
        step = config.tick_interval / _BUCKETS
        for b in range(_BUCKETS):
            self._push(step * (b + 1), _TICK, b, None)

    # --- the event loop ------------------------------------------------------------

    def run(self, until: float, stop: Callable[[], bool] | None = None) -> bool:
        """Process events up to time ``until``; True if ``stop()`` became true first."""
        queue = self._queue
        tick = self.config.tick_interval
        while queue and queue[0][0] <= until:
            at, _, kind, target, payload = heapq.heappop(queue)
            self.now = at
            if kind == _TICK:
                for i in self._tick_groups[target]:
                    if i not in self.killed:
                        self._handle(i, self.cores[i].tick(at))
                self._push(at + tick, _TICK, target, None)
                if stop is not None and stop():
                    return True
            elif target not in self.killed:
                sender, message = payload  # type: ignore[misc]
                self._handle(target, self.cores[target].received(sender, message, at))
                if stop is not None and stop():
                    return True
        self.now = until
        return stop is not None and stop()

    def _push(self, at: float, kind: int, target: int, payload: object) -> None:
        self._order += 1
        heapq.heappush(self._queue, (at, self._order, kind, target, payload))

    def _handle(self, me: int, instructions: list[Instruction]) -> None:
        for ins in instructions:
            if type(ins) is Send:
                self._send(me, ins)
            elif type(ins) is MemberChanged:
                if self.on_change is not None:
                    self.on_change(me, ins)
                self._node_reacts(me, ins)
            elif type(ins) is AdvertChanged and self.on_advert is not None:
                self.on_advert(me, ins)

    def _send(self, me: int, send: Send) -> None:
        to = self.index.get(send.to)
        if to is None or to in self.killed:
            return
        if self.closed and (min(me, to), max(me, to)) in self.closed:
            return  # no link: the node drops it
        if self.group and self.group.get(me, 0) != self.group.get(to, 0):
            return
        if self.count_bytes:
            self.messages += 1
            self.bytes += len(pickle.dumps(send.message))
            message = send.message
            if type(message) is PingReq and message.seq != self._last_req.get(me):
                self._last_req[me] = message.seq
                self.indirect += 1
        if self.loss and self.rng.random() < self.loss:
            return
        at = self.now + self.rng.uniform(*self.latency)
        self._push(at, _DELIVER, to, (self.infos[me].node_id, send.message))

    def _node_reacts(self, me: int, change: MemberChanged) -> None:
        """The node's part: close links to the dead, re-dial those that come back."""
        other = self.index.get(change.member.node_id)
        if other is None:
            return
        pair = (min(me, other), max(me, other))
        if change.new in (DEAD, MemberState.LEFT) and pair not in self.closed:
            self.closed.add(pair)
            if other not in self.killed:
                self._handle(other, self.cores[other].link_closed(self.infos[me].node_id, self.now))
        elif change.new is ALIVE and pair in self.closed:
            self.closed.discard(pair)
            for a, b in ((me, other), (other, me)):
                if a not in self.killed:
                    self._handle(a, self.cores[a].linked(self.infos[b], self.now))


# --- measurements ------------------------------------------------------------------


@dataclass(frozen=True)
class Spread:
    """How long news took to reach every live member."""

    seconds: float  # from the event to the last member knowing (nan: not within the limit)
    rounds: float  # seconds / probe_interval


def _spread(seconds: float, config: SwimConfig) -> Spread:
    return Spread(seconds, seconds / config.probe_interval)


def advert_spread(
    members: int, config: SwimConfig, loss: float, seed: int, limit: float = 30.0
) -> Spread:
    """A member publishes a new advert (version 2): until all others have it."""
    sim = Sim(members, config=config, loss=loss, seed=seed)
    sim.run(2.0)  # probes under way, phases mixed
    origin = sim.rng.randrange(members)
    origin_id = sim.infos[origin].node_id
    learned: set[int] = set()

    def on_advert(me: int, change: AdvertChanged) -> None:
        if change.node_id == origin_id and change.version == 2:
            learned.add(me)

    sim.on_advert = on_advert
    start = sim.now
    sim._handle(origin, sim.cores[origin].set_advert(("f", "g", "h"), start))
    done = sim.run(start + limit, lambda: len(learned) == members - 1)
    return _spread(sim.now - start if done else math.nan, config)


@dataclass(frozen=True)
class Death:
    first_suspect: float  # seconds from the kill to the first SUSPECT anywhere
    everyone: Spread  # from the kill to the last live member marking it DEAD


def death_spread(
    members: int, config: SwimConfig, loss: float, seed: int, limit: float = 60.0
) -> Death:
    """A member is killed (stops answering, its ticks stop): until all others mark it DEAD."""
    sim = Sim(members, config=config, loss=loss, seed=seed)
    sim.run(2.0)
    victim = sim.rng.randrange(members)
    victim_id = sim.infos[victim].node_id
    dead: set[int] = set()
    suspected: list[float] = []

    def on_change(me: int, change: MemberChanged) -> None:
        if change.member.node_id == victim_id:
            if change.new is SUSPECT and not suspected:
                suspected.append(sim.now)
            elif change.new is DEAD:
                dead.add(me)

    sim.on_change = on_change
    start = sim.now
    sim.killed.add(victim)
    done = sim.run(start + limit, lambda: len(dead) == members - 1)
    first = suspected[0] - start if suspected else math.nan
    return Death(first, _spread(sim.now - start if done else math.nan, config))


@dataclass(frozen=True)
class Steady:
    seconds: float
    suspicions: int  # distinct (member, incarnation) wrongly suspected
    false_dead: int  # distinct members some live member marked DEAD
    messages: int  # every message sent in the window
    indirect: int  # probes whose direct Ping went unanswered, so PingReqs went out
    bytes_per_member_s: float


def steady_state(
    members: int, config: SwimConfig, loss: float, seed: int, seconds: float
) -> Steady:
    """Nobody fails; messages are lost at ``loss``. Count what was wrongly suspected or buried."""
    sim = Sim(members, config=config, loss=loss, seed=seed)
    sim.run(2.0)
    suspicions: set[tuple[str, int]] = set()
    dead: set[str] = set()

    def on_change(me: int, change: MemberChanged) -> None:
        if change.new is SUSPECT:
            suspicions.add((change.member.node_id, change.member.incarnation))
        elif change.new is DEAD:
            dead.add(change.member.node_id)

    sim.on_change = on_change
    sim.count_bytes = True
    start = sim.now
    sim.run(start + seconds)
    return Steady(
        seconds,
        len(suspicions),
        len(dead),
        sim.messages,
        sim.indirect,
        sim.bytes / members / seconds,
    )


# --- the command line -----------------------------------------------------------------


def _sizes(text: str) -> list[int]:
    return [int(x.replace("_", "")) for x in text.split(",") if x.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.membership_sim", description=__doc__.split("\n\n")[1]
    )
    parser.add_argument("--members", type=_sizes, default=[100, 1000], metavar="N[,N]")
    parser.add_argument("--loss", type=float, default=0.01, help="message loss (default 0.01)")
    parser.add_argument("--steady", type=float, default=60.0, help="steady window, sim seconds")
    parser.add_argument("--seed", type=int, default=1, help="first seed (default 1)")
    parser.add_argument(
        "--seeds", type=int, default=3, help="runs per spread figure, median (max) shown"
    )
    parser.add_argument(
        "--detection",
        type=int,
        default=0,
        metavar="KILLS",
        help="instead: kill one member KILLS times per size, show detection-time quantiles",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a SwimConfig field, e.g. --set probe_interval=1.0 (repeatable)",
    )
    ns = parser.parse_args(argv)
    try:
        ns.config = _config(ns.set)
    except (ValueError, TypeError) as e:
        parser.error(str(e))
    return ns


def _config(settings: list[str]) -> SwimConfig:
    """SwimConfig() with ``field=value`` overrides, each value parsed as the field's type."""
    config = SwimConfig()
    for setting in settings:
        name, _, text = setting.partition("=")
        if name not in {f.name for f in fields(SwimConfig)}:
            raise ValueError(f"--set {setting}: SwimConfig has no field {name!r}")
        current = getattr(config, name)
        value: object = (
            text.lower() in ("1", "true", "yes")
            if isinstance(current, bool)
            else type(current)(text)
        )
        config = replace(config, **{name: value})
    return config


def _f(x: float, digits: int = 2) -> str:
    return "-" if math.isnan(x) else f"{x:.{digits}f}"


def _median_max(values: list[float], digits: int = 2) -> str:
    """``median (max)`` over seeds; a run that never finished shows as ``-``."""
    if any(math.isnan(v) for v in values):
        return "-"
    if len(values) == 1:
        return _f(values[0], digits)
    return f"{_f(statistics.median(values), digits)} ({_f(max(values), digits)})"


HEADER = (
    "| N | log2 N | advert, push: rounds | advert, gossip only: rounds "
    "| death: first SUSPECT s | death: all DEAD s | death, gossip only: all DEAD s "
    "| steady: indirect probes | steady: false SUSPECT | steady: false DEAD "
    "| gossip B/member/s | wall s |"
)


def row(n: int, config: SwimConfig, loss: float, seeds: list[int], steady_seconds: float) -> str:
    """One table row: the spreads over ``seeds`` (median (max)), the steady run on the first."""
    began = time.perf_counter()
    gossip_only = replace(config, push=False)
    push = [advert_spread(n, config, loss, s).rounds for s in seeds]
    epidemic = [advert_spread(n, gossip_only, loss, s).rounds for s in seeds]
    deaths = [death_spread(n, config, loss, s) for s in seeds]
    quiet = [death_spread(n, gossip_only, loss, s).everyone.seconds for s in seeds]
    steady = steady_state(n, config, loss, seeds[0], steady_seconds)
    return (
        f"| {n:,} | {math.log2(n):.1f} | {_median_max(push, 1)} | {_median_max(epidemic, 1)} "
        f"| {_median_max([d.first_suspect for d in deaths])} "
        f"| {_median_max([d.everyone.seconds for d in deaths])} | {_median_max(quiet)} "
        f"| {steady.indirect} in {steady.seconds:.0f} s "
        f"| {steady.suspicions} | {steady.false_dead} "
        f"| {steady.bytes_per_member_s:,.0f} | {time.perf_counter() - began:.0f} |"
    )


def _quantiles(values: list[float]) -> str:
    ordered = sorted(values)
    p50 = ordered[len(ordered) // 2]
    p95 = ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))]
    return f"{p50:.2f} / {p95:.2f} / {ordered[-1]:.2f}"


def detection(
    sizes: list[int], config: SwimConfig, loss: float, runs: int, first_seed: int
) -> None:
    """How soon a killed member is SUSPECT somewhere and DEAD everywhere, over ``runs`` kills."""
    print(
        "| N | kills | first SUSPECT s p50 / p95 / max | within 2 s "
        "| all DEAD s p50 / p95 / max | within 5 s |"
    )
    print("|---|---|---|---|---|---|")
    for n in sizes:
        deaths = [death_spread(n, config, loss, first_seed + r) for r in range(runs)]
        suspect = [d.first_suspect for d in deaths]
        dead = [d.everyone.seconds for d in deaths]
        print(
            f"| {n:,} | {runs} | {_quantiles(suspect)} "
            f"| {sum(s <= 2.0 for s in suspect)}/{runs} "
            f"| {_quantiles(dead)} | {sum(d <= 5.0 for d in dead)}/{runs} |",
            flush=True,
        )


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    seeds = list(range(ns.seed, ns.seed + ns.seeds))
    print(
        f"membership simulator: Python {sys.version.split()[0]}, loss {ns.loss:.1%}, "
        f"latency 0.5-2 ms, seeds {seeds}, {ns.config}"
    )
    print()
    if ns.detection:
        detection(ns.members, ns.config, ns.loss, ns.detection, ns.seed)
        return 0
    print(HEADER)
    print("|" + "---|" * (HEADER.count("|") - 1))
    for n in ns.members:
        print(row(n, ns.config, ns.loss, seeds, ns.steady), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
