"""The membership simulator at small sizes, and one marked run at 1,000 members."""

from __future__ import annotations

import math

import pytest

from benchmarks.membership_sim import Sim, advert_spread, death_spread, steady_state
from mpreg.membership import SwimConfig

CONFIG = SwimConfig()
GOSSIP_ONLY = SwimConfig(push=False)


@pytest.mark.parametrize("members", [20, 50])
def test_an_advert_reaches_every_member_pushed_at_once_or_gossiped_in_log_n_rounds(
    members: int,
) -> None:
    pushed = advert_spread(members, CONFIG, loss=0.0, seed=1)
    assert pushed.seconds <= 0.01  # one Push, 0.5-2 ms away
    gossiped = advert_spread(members, GOSSIP_ONLY, loss=0.0, seed=1)
    assert not math.isnan(gossiped.seconds)
    assert gossiped.rounds <= 2 * math.log2(members)


@pytest.mark.parametrize("members", [20, 50])
def test_a_death_is_known_by_every_member_within_the_issue_target(members: int) -> None:
    death = death_spread(members, CONFIG, loss=0.0, seed=2)
    assert death.first_suspect <= 2.0
    assert death.everyone.seconds <= 5.0


def test_no_member_is_suspected_or_buried_without_loss() -> None:
    steady = steady_state(50, CONFIG, loss=0.0, seed=3, seconds=30.0)
    assert steady.suspicions == 0
    assert steady.false_dead == 0
    assert steady.messages > 50 * 30 / CONFIG.probe_interval  # probes did run: Ping and Ack


def test_a_partitioned_member_is_buried_on_the_other_side_and_rejoins_after_healing() -> None:
    sim = Sim(20, config=CONFIG, seed=4)
    sim.run(2.0)
    sim.group = {7: 1}  # member 7 alone on its side
    lone = sim.infos[7].node_id
    sim.run(sim.now + 10.0)
    assert all(sim.cores[i].member(lone).state.name == "DEAD" for i in range(20) if i != 7)  # type: ignore[union-attr]
    sim.group = {}
    # Its node re-dials the others, as a node does for links it lost (not the core's job).
    for i in range(20):
        if i != 7:
            sim.closed.discard((min(i, 7), max(i, 7)))
            sim._handle(7, sim.cores[7].linked(sim.infos[i], sim.now))
            sim._handle(i, sim.cores[i].linked(sim.infos[7], sim.now))
    sim.run(sim.now + 3.0)
    assert sim.cores[7].incarnation >= 1
    assert all(sim.cores[i].member(lone).state.name == "ALIVE" for i in range(20))  # type: ignore[union-attr]


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_a_thousand_members_converge_in_a_bounded_number_of_rounds() -> None:
    members = 1000
    gossiped = advert_spread(members, GOSSIP_ONLY, loss=0.01, seed=1)
    assert gossiped.rounds <= 1.5 * math.log2(members)  # measured 6 rounds, log2 N = 10
    pushed = advert_spread(members, CONFIG, loss=0.01, seed=1)
    assert pushed.rounds <= 2
    death = death_spread(members, CONFIG, loss=0.01, seed=1)
    assert death.everyone.seconds <= 5.0
    steady = steady_state(members, CONFIG, loss=0.01, seed=1, seconds=60.0)
    assert steady.false_dead == 0
