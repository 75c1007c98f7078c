"""One Swim core, driven by hand: the rules it applies to each event."""

from __future__ import annotations

import math
import random

import pytest
from swimnet import info

from mpreg.membership import (
    Ack,
    AdvertChanged,
    AdvertUpdate,
    Instruction,
    MemberChanged,
    MemberInfo,
    MemberState,
    MemberUpdate,
    Ping,
    PingReq,
    Push,
    Send,
    Swim,
    SwimConfig,
    Sync,
)

ALIVE, SUSPECT, DEAD, LEFT = (
    MemberState.ALIVE,
    MemberState.SUSPECT,
    MemberState.DEAD,
    MemberState.LEFT,
)
ME, B, C, D = info("me"), info("b"), info("c"), info("d")


def core(*others: MemberInfo, config: SwimConfig | None = None) -> Swim:
    swim = Swim(ME, config=config or SwimConfig(), rng=random.Random(7))
    for other in others:
        swim.linked(other, 0.0)
    return swim


def sends(out: list[Instruction], kind: type | None = None) -> list[Send]:
    return [i for i in out if isinstance(i, Send) and (kind is None or isinstance(i.message, kind))]


def changes(out: list[Instruction]) -> list[tuple[str, MemberState | None, MemberState]]:
    return [(i.member.info.name, i.old, i.new) for i in out if isinstance(i, MemberChanged)]


def ticks(swim: Swim, after: float, until: float) -> list[Instruction]:
    """Tick every tick_interval from just after ``after`` through ``until``, as the node does."""
    step = swim.config.tick_interval
    out: list[Instruction] = []
    k = 1
    while after + k * step <= until + 1e-9:
        out += swim.tick(after + k * step)
        k += 1
    return out


def push(swim: Swim, *updates: object, now: float = 1.0) -> list[Instruction]:
    return swim.received(C.node_id, Push(tuple(updates)), now)  # type: ignore[arg-type]


def state(swim: Swim, who: MemberInfo) -> tuple[MemberState, int] | None:
    member = swim.member(who.node_id)
    return (member.state, member.incarnation) if member else None


def test_linked_learns_an_unknown_member_and_sends_full_state() -> None:
    swim = core(C)
    push(swim, MemberUpdate(D, 4, DEAD))
    out = swim.linked(B, 1.0)
    assert changes(out) == [("b", None, ALIVE)]
    (sync,) = sends(out, Sync)
    assert sync.to == B.node_id
    assert isinstance(sync.message, Sync)
    assert {(u.info.name, u.state, u.incarnation) for u in sync.message.members} == {
        ("me", ALIVE, 0),
        ("c", ALIVE, 0),
        ("d", DEAD, 4),  # the dead travel too, so the joiner refuses stale news of them
        ("b", ALIVE, 0),
    }
    assert changes(swim.linked(B, 2.0)) == []  # known already: no news


@pytest.mark.parametrize(
    ("held", "news", "wins"),
    [
        ((ALIVE, 2), (ALIVE, 3), True),
        ((ALIVE, 2), (ALIVE, 2), False),
        ((ALIVE, 2), (ALIVE, 1), False),
        ((ALIVE, 2), (SUSPECT, 2), True),
        ((ALIVE, 2), (SUSPECT, 1), False),
        ((SUSPECT, 2), (SUSPECT, 2), False),
        ((SUSPECT, 2), (ALIVE, 2), False),
        ((SUSPECT, 2), (ALIVE, 3), True),
        ((ALIVE, 2), (DEAD, 2), True),
        ((SUSPECT, 2), (DEAD, 1), False),
        ((DEAD, 2), (ALIVE, 2), False),
        ((DEAD, 2), (SUSPECT, 5), False),
        ((DEAD, 2), (ALIVE, 3), True),
        ((DEAD, 2), (LEFT, 2), True),
        ((LEFT, 2), (ALIVE, 9), False),
        ((ALIVE, 2), (LEFT, 1), False),
    ],
)
def test_incarnation_rules_decide_which_news_wins(
    held: tuple[MemberState, int], news: tuple[MemberState, int], wins: bool
) -> None:
    swim = core()
    push(swim, MemberUpdate(B, 0, ALIVE), MemberUpdate(B, held[1], held[0]))
    assert state(swim, B) == held
    out = push(swim, MemberUpdate(B, news[1], news[0]), now=2.0)
    assert state(swim, B) == (news if wins else held)
    moved = news[0] is not held[0] and wins
    assert changes(out) == ([("b", held[0], news[0])] if moved else [])


def test_stale_adverts_never_overwrite_newer_ones() -> None:
    swim = core(B)
    out = push(swim, AdvertUpdate(B.node_id, 3, "v3"))
    assert [i for i in out if isinstance(i, AdvertChanged)] == [AdvertChanged(B.node_id, 3, "v3")]
    assert push(swim, AdvertUpdate(B.node_id, 2, "v2"), AdvertUpdate(B.node_id, 3, "x")) == []
    assert swim.advert(B.node_id) == (3, "v3")


def test_adverts_of_dead_members_are_dropped_and_refused() -> None:
    swim = core(B)
    push(swim, AdvertUpdate(B.node_id, 1, "v1"))
    push(swim, MemberUpdate(B, 0, DEAD))
    assert swim.advert(B.node_id) is None
    assert push(swim, AdvertUpdate(B.node_id, 2, "v2")) == []
    assert B.node_id not in swim.adverts()


def test_news_of_our_own_suspicion_is_refuted_with_a_push_to_all() -> None:
    swim = core(B, C)
    swim.set_advert("mine", 0.0)
    out = push(swim, MemberUpdate(ME, 0, SUSPECT))
    assert swim.incarnation == 1
    pushed = sends(out, Push)
    assert {s.to for s in pushed} == {B.node_id, C.node_id}
    assert isinstance(pushed[0].message, Push)
    assert pushed[0].message.updates == (MemberUpdate(ME, 1, ALIVE),)
    # Declared dead at 5: back at 6, with the advert those who buried us dropped.
    out = swim.received(B.node_id, Sync((MemberUpdate(ME, 5, DEAD),), ()), 2.0)
    assert swim.incarnation == 6
    message = sends(out, Push)[0].message
    assert isinstance(message, Push)
    assert message.updates == (MemberUpdate(ME, 6, ALIVE), AdvertUpdate(ME.node_id, 1, "mine"))
    assert push(swim, MemberUpdate(ME, 3, SUSPECT)) == []  # old news: nothing to refute


def test_a_refutation_also_answers_a_sender_we_hold_dead() -> None:
    swim = core(B, C)
    push(swim, MemberUpdate(B, 0, DEAD))
    out = swim.received(B.node_id, Sync((MemberUpdate(ME, 0, DEAD),), ()), 2.0)
    assert {s.to for s in sends(out, Push)} == {C.node_id, B.node_id}


def test_set_advert_bumps_the_version_and_pushes_to_live_members_only() -> None:
    swim = core(B, C, D)
    push(swim, MemberUpdate(D, 0, DEAD))
    out = swim.set_advert({"f": 1}, 1.0)
    assert {s.to for s in sends(out, Push)} == {B.node_id, C.node_id}
    assert swim.set_advert({"f": 2}, 2.0)
    assert swim.advert(ME.node_id) == (2, {"f": 2})
    assert not [i for i in out if isinstance(i, AdvertChanged)]  # our own: no news to the node


def test_a_probe_pings_then_asks_helpers_then_suspects() -> None:
    cfg = SwimConfig()
    swim = core(B, C, D)
    pings: list[Send] = []
    t = 0.0
    while not pings:
        t += cfg.tick_interval
        pings = sends(swim.tick(t), Ping)
    (ping,) = pings
    target = ping.to
    assert isinstance(ping.message, Ping)
    out = swim.tick(t + cfg.probe_timeout)
    reqs = sends(out, PingReq)
    assert {r.to for r in reqs} == {B.node_id, C.node_id, D.node_id} - {target}
    assert all(isinstance(r.message, PingReq) and r.message.target == target for r in reqs)
    out = swim.tick(t + cfg.probe_interval)
    assert [c[1:] for c in changes(out)] == [(ALIVE, SUSPECT)]
    told = [s for s in sends(out, Push) if s.to == target]
    assert told  # the suspect hears it at once, to refute
    out = ticks(swim, t + cfg.probe_interval, t + cfg.probe_interval + cfg.suspect_timeout)
    assert [c[1:] for c in changes(out) if c[0] == target.removeprefix("id-")] == [(SUSPECT, DEAD)]
    who = {i.node_id: i for i in (B, C, D)}[target]
    death = MemberUpdate(who, 0, DEAD)
    told_dead = {s.to for s in sends(out, Push) if death in s.message.updates}  # type: ignore[union-attr]
    assert told_dead == {B.node_id, C.node_id, D.node_id} - {target}


def test_an_ack_relayed_by_a_helper_before_the_interval_ends_counts() -> None:
    cfg = SwimConfig()
    swim = core(B, C)
    t, pings = 0.0, []
    while not pings:
        t += cfg.tick_interval
        pings = sends(swim.tick(t), Ping)
    (req,) = sends(swim.tick(t + cfg.probe_timeout), PingReq)
    assert isinstance(req.message, PingReq)
    swim.received(req.to, Ack(req.message.seq), t + cfg.probe_timeout + 0.01)
    out = swim.tick(t + cfg.probe_interval)
    assert not changes(out)


def test_a_helper_pings_the_target_and_relays_its_ack_with_the_original_seq() -> None:
    swim = core(B, C)
    out = swim.received(B.node_id, PingReq(77, C.node_id), 1.0)
    (ping,) = sends(out)
    assert ping.to == C.node_id
    assert isinstance(ping.message, Ping)
    assert ping.message.seq != 77
    assert swim.received(C.node_id, Ack(ping.message.seq + 1000), 1.1) == []  # unknown seq
    (relayed,) = sends(swim.received(C.node_id, Ack(ping.message.seq), 1.1))
    assert relayed.to == B.node_id
    assert isinstance(relayed.message, Ack)
    assert relayed.message.seq == 77
    assert sends(swim.received(C.node_id, Ack(ping.message.seq), 1.2)) == []  # relayed once


def test_a_ping_is_answered_with_an_ack_of_its_seq() -> None:
    swim = core(B)
    (ack,) = sends(swim.received(B.node_id, Ping(5), 1.0))
    assert ack.to == B.node_id
    assert isinstance(ack.message, Ack)
    assert ack.message.seq == 5


def test_link_closed_probes_through_others_at_once() -> None:
    swim = core(B, C, D)
    out = swim.link_closed(B.node_id, 0.05)
    reqs = sends(out, PingReq)
    assert {r.to for r in reqs} == {C.node_id, D.node_id}
    assert not changes(out)
    assert swim.link_closed(B.node_id, 0.06) == []  # already being probed
    assert swim.link_closed("id-unknown", 0.06) == []


def test_link_closed_with_nobody_to_ask_suspects_after_the_probe_timeout() -> None:
    cfg = SwimConfig()
    swim = core(B)
    assert swim.link_closed(B.node_id, 0.0) == []
    assert state(swim, B) == (ALIVE, 0)
    out = swim.tick(cfg.probe_timeout)
    assert changes(out) == [("b", ALIVE, SUSPECT)]


def test_a_stalled_node_extends_its_deadlines_instead_of_suspecting() -> None:
    cfg = SwimConfig()
    swim = core(B, C)
    t, pings = 0.0, []
    while not pings:
        t += cfg.tick_interval
        pings = sends(swim.tick(t), Ping)
    (ping,) = pings
    assert isinstance(ping.message, Ping)
    # Our own loop stalled for 2 s; the Ack has been waiting in our socket.
    out = swim.tick(t + 2.0)
    assert not sends(out, PingReq)
    assert not changes(out)
    swim.received(ping.to, Ack(ping.message.seq), t + 2.0)
    assert not changes(swim.tick(t + 2.0 + cfg.probe_interval))


def test_a_stalled_node_gives_its_suspects_the_stall_to_refute() -> None:
    swim = core(B, C)
    push(swim, MemberUpdate(B, 0, SUSPECT), now=1.0)
    ticks(swim, 1.0, 3.0)  # the suspicion makes B DEAD at 3.5 unless refuted
    # Our loop stalled from 3.0 to 4.0; B's refutation waits in our socket.
    assert not changes(swim.tick(4.0))
    out = swim.received(B.node_id, Push((MemberUpdate(B, 1, ALIVE),)), 4.0)
    assert changes(out) == [("b", SUSPECT, ALIVE)]


def test_each_update_is_piggybacked_a_bounded_number_of_times() -> None:
    cfg = SwimConfig(retransmit_mult=2, push=False)
    swim = core(B, C, D, config=cfg)  # N = 4 with us: 2 * ceil(log2(5)) = 6 transmissions
    swim.set_advert("v", 0.0)
    carried = 0
    for seq in range(20):
        out = swim.received(B.node_id, Ping(seq), 1.0)
        (ack,) = sends(out)
        assert isinstance(ack.message, Ack)
        carried += any(isinstance(u, AdvertUpdate) for u in ack.message.updates)
    assert carried == cfg.retransmit_mult * math.ceil(math.log2(4 + 1))
    assert not any(isinstance(u, AdvertUpdate) for u, _ in swim.pending_updates())


def test_a_newer_update_replaces_the_older_one_in_the_buffer() -> None:
    swim = core(B)
    push(swim, MemberUpdate(C, 0, ALIVE))
    push(swim, MemberUpdate(C, 0, SUSPECT))
    about_c = [u for u, _ in swim.pending_updates() if isinstance(u, MemberUpdate) and u.info == C]
    assert about_c == [MemberUpdate(C, 0, SUSPECT)]


def test_piggyback_sends_fewest_transmissions_first_and_at_most_max() -> None:
    swim = core(B, config=SwimConfig(max_piggyback=2))
    for i in range(5):
        push(swim, MemberUpdate(info(f"x{i}"), 0, ALIVE))
    first = sends(swim.received(B.node_id, Ping(1), 1.0))[0].message
    second = sends(swim.received(B.node_id, Ping(2), 1.0))[0].message
    assert isinstance(first, Ack) and isinstance(second, Ack)
    assert len(first.updates) == 2
    assert not set(first.updates) & set(second.updates)  # the unsent went next


def test_dead_members_are_forgotten_after_dead_reap_and_refused_until_then() -> None:
    cfg = SwimConfig(dead_reap=10.0)
    swim = core(B, C, config=cfg)
    push(swim, MemberUpdate(B, 1, DEAD), now=1.0)
    swim.tick(5.0)
    assert push(swim, MemberUpdate(B, 1, ALIVE), now=5.0) == []  # stale news of the dead
    assert state(swim, B) == (DEAD, 1)
    swim.tick(10.9)
    assert state(swim, B) == (DEAD, 1)
    swim.tick(11.0)
    assert swim.member(B.node_id) is None
    assert {m.info.name for m in swim.members()} == {"me", "c"}


def test_leave_pushes_left_at_a_higher_incarnation_and_goes_quiet() -> None:
    swim = core(B, C)
    out = swim.leave(1.0)
    assert {s.to for s in sends(out, Push)} == {B.node_id, C.node_id}
    assert state(swim, ME) == (LEFT, 1)
    assert swim.tick(5.0) == []
    assert swim.received(B.node_id, Ping(1), 5.0) == []
    assert swim.leave(6.0) == []


def test_alive_lists_the_routable_others() -> None:
    swim = core(B, C, D)
    push(swim, MemberUpdate(C, 0, SUSPECT), MemberUpdate(D, 0, DEAD))
    assert {m.info.name for m in swim.alive()} == {"b", "c"}
    assert {m.info.name for m in swim.members()} == {"me", "b", "c", "d"}


def test_an_advert_set_without_push_is_only_piggybacked() -> None:
    from mpreg.membership import AdvertUpdate, MemberInfo, Push, Send, Swim

    core = Swim(MemberInfo("a", "a", "127.0.0.1:1"), now=0.0)
    core.linked(MemberInfo("b", "b", "127.0.0.1:2"), 0.0)
    quiet = core.set_advert("load moved", 0.0, push=False)
    assert not any(isinstance(i, Send) for i in quiet)
    pending = [u for u, _ in core.pending_updates() if isinstance(u, AdvertUpdate)]
    assert [u.advert for u in pending] == ["load moved"]
    loud = core.set_advert("endpoints changed", 0.0)
    assert any(isinstance(i, Send) and isinstance(i.message, Push) for i in loud)
