"""SWIM timing and gossip knobs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SwimConfig:
    """How often a core probes, how long it waits, how widely it gossips.

    The defaults meet the issue's targets for a hung member, SUSPECT within
    2 s and DEAD within 5 s, in 97-100% of kills (simulated, 5 to 100
    members, 1% loss; 95% at 1,000). No setting makes it certain: detection
    waits for some member's probe to land on the hung one, and with one probe
    per member per interval the first such probe comes after a random delay.
    A 1.0 s interval with a 0.5 s timeout and 3.0 s suspicion missed the
    targets in 30-50% of kills. ``python -m benchmarks.membership_sim
    --detection 200`` measures it; benchmarks/README.md has the tables.
    Intervals are multiples of ``tick_interval`` so timers fire on time.
    """

    tick_interval: float = 0.1  # how often the node calls tick()
    # One probe of one member per interval (round-robin over a shuffled list, SWIM style).
    probe_interval: float = 0.4
    # No Ack by then: ask `indirect_probes` other ALIVE members to probe it;
    # no Ack (direct or relayed) by the end of the interval: SUSPECT.
    probe_timeout: float = 0.2
    indirect_probes: int = 3
    suspect_timeout: float = 2.5  # suspected this long without refutation: DEAD
    retransmit_mult: int = 3  # an update is piggybacked retransmit_mult * ceil(log2(N+1)) times
    max_piggyback: int = 16  # updates per message
    dead_reap: float = 60.0  # forget DEAD/LEFT members after this long
    # Push important news (own advert, a death we declared, a leave, a refutation)
    # to every live member at once. Off, news spreads by piggybacking only
    # (the simulator uses that to measure the epidemic on its own).
    push: bool = True
