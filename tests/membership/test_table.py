"""The member table over a shared baseline, and the lazily shuffled probe order."""

from __future__ import annotations

import random
from collections import Counter

from swimnet import info

from mpreg.membership import Baseline, MemberState, MemberUpdate, Push, Swim, SwimConfig
from mpreg.membership.order import ProbeOrder, sample

NAMES = [f"m{i}" for i in range(6)]


def baseline() -> Baseline:
    return Baseline([info(n) for n in NAMES], {info(n).node_id: (1, n) for n in NAMES})


def test_cores_on_one_baseline_share_it_and_never_change_it() -> None:
    base = baseline()
    before = {k: (m.incarnation, m.state) for k, m in base.members.items()}
    a = Swim(info("m0"), rng=random.Random(1), baseline=base)
    b = Swim(info("m1"), rng=random.Random(2), baseline=base)
    a.received(info("m2").node_id, Push((MemberUpdate(info("m3"), 0, MemberState.DEAD),)), 1.0)
    assert a.member(info("m3").node_id).state is MemberState.DEAD  # type: ignore[union-attr]
    assert b.member(info("m3").node_id).state is MemberState.ALIVE  # type: ignore[union-attr]
    assert {k: (m.incarnation, m.state) for k, m in base.members.items()} == before
    assert a.advert(info("m3").node_id) is None  # dropped with the death, in a's view only
    assert b.advert(info("m3").node_id) == (1, "m3")
    assert base.adverts[info("m3").node_id] == (1, "m3")
    assert len(a.members()) == len(b.members()) == 6


def test_a_baseline_member_can_be_forgotten_and_learned_again() -> None:
    base = baseline()
    a = Swim(info("m0"), config=SwimConfig(dead_reap=5.0), rng=random.Random(1), baseline=base)
    m3 = info("m3")
    a.received("x", Push((MemberUpdate(m3, 0, MemberState.LEFT),)), 1.0)
    for k in range(1, 61):
        a.tick(1.0 + k * 0.1)
    assert a.member(m3.node_id) is None
    assert len(a.members()) == 5
    a.linked(info("new"), 8.0)
    a.received("x", Push((MemberUpdate(m3, 7, MemberState.ALIVE),)), 8.0)  # a new life
    assert a.member(m3.node_id).incarnation == 7  # type: ignore[union-attr]
    assert {m.info.name for m in a.members()} == {*NAMES, "new"}


def test_a_probe_round_visits_every_id_once_in_a_random_order() -> None:
    first, second = tuple(f"a{i}" for i in range(50)), [f"b{i}" for i in range(7)]
    orders = []
    for seed in range(3):
        order = ProbeOrder(first, second, random.Random(seed))
        seen = []
        while (x := order.next()) is not None:
            seen.append(x)
        assert sorted(seen) == sorted([*first, *second])
        orders.append(seen)
    assert orders[0] != orders[1] != orders[2]


def test_a_probe_order_is_uniform_over_positions() -> None:
    firsts: Counter[str] = Counter()
    rng = random.Random(5)
    for _ in range(4000):
        firsts[ProbeOrder(("a", "b"), ["c", "d"], rng).next() or ""] += 1
    assert set(firsts) == {"a", "b", "c", "d"}
    assert all(800 < count < 1200 for count in firsts.values())


def test_sampling_finds_the_only_acceptable_helper_in_a_small_table() -> None:
    ids = tuple(f"x{i}" for i in range(40))
    for seed in range(20):
        assert sample(ids, [], 3, lambda i: i == "x17", random.Random(seed)) == ["x17"]


def test_sampling_a_large_table_returns_distinct_acceptable_ids() -> None:
    ids = tuple(f"x{i}" for i in range(5000))
    chosen = sample(ids, ["y"], 3, lambda i: i != "x1", random.Random(3))
    assert len(chosen) == len(set(chosen)) == 3
    assert "x1" not in chosen
