"""Several Swim cores over the in-memory network: joining, detecting, refuting, leaving."""

from __future__ import annotations

import pytest
from swimnet import Net, info

from mpreg.membership import MemberState, MemberUpdate, Push, SwimConfig

ALIVE, SUSPECT, DEAD, LEFT = (
    MemberState.ALIVE,
    MemberState.SUSPECT,
    MemberState.DEAD,
    MemberState.LEFT,
)
FIVE = ("a", "b", "c", "d", "e")


def converged(net: Net) -> bool:
    names = list(net.cores)
    return all(net.state(o, x) is ALIVE for o in names for x in names if o != x)


def incarnation(net: Net, observer: str, about: str) -> int:
    member = net.cores[observer].member(info(about).node_id)
    assert member is not None
    return member.incarnation


def settled(seed: int = 1, names: tuple[str, ...] = FIVE, **kwargs: object) -> Net:
    net = Net(names, seed=seed, **kwargs)  # type: ignore[arg-type]
    net.mesh()
    net.run(5.0)
    assert converged(net)
    return net


def test_five_members_join_one_by_one_through_sync_and_converge() -> None:
    net = Net(FIVE)
    # Each joiner links to one member only; Sync and gossip (and dialling) do the rest.
    for joiner, seed in zip(FIVE[1:], FIVE, strict=False):
        net.link(joiner, seed)
    took = net.run_until(lambda: converged(net), limit=5.0)
    assert took < 1.0
    assert len(net.links) == 10  # the nodes dialled everyone they learned: a full mesh
    assert all(len(core.members()) == 5 for core in net.cores.values())


def test_joiner_learns_everyone_from_one_sync_without_dialling() -> None:
    net = Net(FIVE, auto_dial=False)
    for a in FIVE[:4]:
        for b in FIVE[:4]:
            if a < b:
                net.link(a, b)
    net.run(1.0)
    net.link("e", "a")  # one Sync each way
    net.run(0.01)
    assert {m.info.name for m in net.cores["e"].members()} == set(FIVE)
    assert net.state("a", "e") is ALIVE


def test_direct_probes_keep_a_quiet_cluster_alive() -> None:
    net = settled()
    net.run(30.0)
    assert net.sent["Ping"] >= 5 * 30 / net.config.probe_interval * 0.9
    assert net.sent["Ack"] == net.sent["Ping"]
    assert net.sent["PingReq"] == 0
    assert not [c for c in net.changes if c.new in (SUSPECT, DEAD)]


@pytest.mark.parametrize("seed", range(1, 9))
def test_a_paused_member_is_suspect_within_2s_and_dead_within_5s(seed: int) -> None:
    net = settled(seed)
    paused_at = net.now
    net.pause("c")
    others = [n for n in FIVE if n != "c"]
    dead_after = net.run_until(lambda: net.everyone_sees("c", DEAD, others), limit=10.0)
    suspected = net.first_change("c", SUSPECT, since=paused_at)
    assert suspected is not None
    assert suspected.at - paused_at <= 2.0
    assert dead_after <= 5.0


def test_two_members_suspect_at_the_probe_timeout() -> None:
    net = settled(names=("a", "b"))
    paused_at = net.now
    net.pause("b")
    net.run_until(lambda: net.state("a", "b") is DEAD, limit=6.0)
    suspected = net.first_change("b", SUSPECT, since=paused_at)
    assert suspected is not None
    cfg = net.config
    # The probe starts within one interval; with nobody to ask, SUSPECT at its timeout.
    assert suspected.at - paused_at <= cfg.probe_interval + cfg.probe_timeout + cfg.tick_interval


def test_indirect_probes_save_a_member_whose_link_to_the_prober_loses_everything() -> None:
    net = settled()
    net.blocked.add(frozenset(("a", "b")))  # the link stays open; every message on it is lost
    net.run(30.0)
    assert net.sent["PingReq"] > 0
    assert not [c for c in net.changes if c.new in (SUSPECT, DEAD)]


def test_a_false_suspicion_is_refuted_by_an_incarnation_bump() -> None:
    net = settled()
    b = info("b")
    # "a" hears a rumour that "b" is suspect, and repeats it.
    net.inject("a", "c", Push((MemberUpdate(b, 0, SUSPECT),)))
    assert net.state("a", "b") is SUSPECT
    net.run(1.0)
    assert net.cores["b"].incarnation == 1
    assert net.everyone_sees("b", ALIVE)
    assert all(incarnation(net, o, "b") == 1 for o in FIVE if o != "b")
    net.run(10.0)
    assert net.first_change("b", DEAD) is None


def test_a_member_that_drops_acks_for_a_while_is_suspected_then_refutes() -> None:
    net = settled()
    for other in FIVE:
        if other != "b":
            net.blocked.add(frozenset(("b", other)))
    net.run_until(lambda: net.first_change("b", SUSPECT) is not None, limit=5.0)
    net.blocked.clear()
    net.run(2.0)
    assert net.everyone_sees("b", ALIVE)
    assert net.cores["b"].incarnation >= 1
    assert net.first_change("b", DEAD) is None


def test_a_resumed_member_declared_dead_rejoins_with_a_higher_incarnation() -> None:
    net = settled()
    net.pause("c")
    net.run_until(lambda: net.everyone_sees("c", DEAD, ["a", "b", "d", "e"]), limit=10.0)
    assert not [link for link in net.links if "c" in link]  # everyone closed its link to it
    net.resume("c")
    rejoin_at = net.now
    for other in ("a", "b", "d", "e"):
        net.link("c", other)  # its node re-dials them
    net.run(1.0)
    assert net.cores["c"].incarnation >= 1
    assert net.everyone_sees("c", ALIVE)
    back = [ch for ch in net.changes if ch.about == info("c").node_id and ch.at >= rejoin_at]
    assert {(ch.observer, ch.old, ch.new) for ch in back} >= {
        (o, DEAD, ALIVE) for o in ("a", "b", "d", "e")
    }
    net.run(10.0)
    assert converged(net)


def test_an_advert_reaches_everyone_and_is_reported_once_per_version() -> None:
    net = settled()
    net.act("a", net.cores["a"].set_advert({"functions": ["f"]}, net.now))
    net.run(0.05)
    net.act("a", net.cores["a"].set_advert({"functions": ["f", "g"]}, net.now))
    net.run(2.0)
    a = info("a").node_id
    assert all(net.cores[o].advert(a) == (2, {"functions": ["f", "g"]}) for o in FIVE)
    seen = [(c.observer, c.version) for c in net.changes if c.about == a and c.new is None]
    assert sorted(seen) == [(o, v) for o in "bcde" for v in (1, 2)]  # each version once


def test_an_advert_spreads_by_piggybacking_alone_within_a_few_rounds() -> None:
    net = settled(config=SwimConfig(push=False))
    a = info("a").node_id
    net.act("a", net.cores["a"].set_advert("v1", net.now))
    took = net.run_until(lambda: all(net.cores[o].advert(a) == (1, "v1") for o in FIVE), limit=10.0)
    assert took <= 5 * net.config.probe_interval
    assert len([c for c in net.changes if c.about == a and c.new is None]) == 4


def test_a_leaving_member_is_left_everywhere_and_never_dead() -> None:
    net = settled()
    net.act("d", net.cores["d"].leave(net.now))
    net.run(0.1)
    assert net.everyone_sees("d", LEFT)
    assert net.cores["d"].tick(net.now + 1.0) == []  # it went quiet
    net.run(20.0)
    assert net.first_change("d", DEAD) is None
    assert net.first_change("d", SUSPECT) is None
    assert net.everyone_sees("d", LEFT)


def test_a_closed_link_leads_to_a_prompt_indirect_probe_and_no_false_death() -> None:
    net = settled(auto_dial=False)
    before = net.sent["PingReq"]
    net.cut("a", "b")
    net.run(net.config.tick_interval)  # the PingReqs went out with link_closed, no tick needed
    assert net.sent["PingReq"] - before >= 2  # a asked others about b, and b about a
    net.run(1.0)
    assert not [c for c in net.changes if c.new in (SUSPECT, DEAD)]


def test_a_closed_link_to_a_crashed_member_leads_to_its_death() -> None:
    net = settled()
    net.pause("e")  # crashed: its links close, and it never answers
    for other in ("a", "b", "c", "d"):
        net.cut("e", other)
    cfg = net.config
    took = net.run_until(lambda: net.everyone_sees("e", DEAD, "abcd"), limit=10.0)
    assert took <= cfg.probe_interval + cfg.suspect_timeout + 2 * cfg.tick_interval


def test_dead_members_are_reaped_after_dead_reap() -> None:
    net = settled(config=SwimConfig(dead_reap=10.0))
    net.pause("e")
    net.run_until(lambda: net.everyone_sees("e", DEAD, "abcd"), limit=10.0)
    net.run(5.0)
    assert net.state("a", "e") is DEAD
    net.run(6.0)
    assert all(net.state(o, "e") is None for o in "abcd")
    assert all(len(net.cores[o].members()) == 4 for o in "abcd")


def test_runs_are_deterministic_given_seed_and_clock() -> None:
    def history(seed: int) -> list[object]:
        net = settled(seed, config=SwimConfig(), loss=0.05)
        net.pause("b")
        net.run(8.0)
        return [(c.at, c.observer, c.about, c.old, c.new) for c in net.changes]

    assert history(3) == history(3)
    assert history(3) != history(4)


def test_two_sides_of_a_healed_partition_that_buried_each_other_rejoin() -> None:
    net = settled()
    left, right = ("a", "b"), ("c", "d", "e")
    net.blocked |= {frozenset((x, y)) for x in left for y in right}
    net.run_until(
        lambda: all(
            net.state(x, y) is DEAD and net.state(y, x) is DEAD for x in left for y in right
        ),
        limit=10.0,
    )
    net.blocked.clear()
    for x in left:
        for y in right:
            net.link(x, y)  # the nodes re-dial what they lost
    took = net.run_until(lambda: converged(net), limit=5.0)
    assert took <= 1.0
    assert all(net.cores[n].incarnation >= 1 for n in FIVE)
