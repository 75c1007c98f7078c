"""The SWIM membership core: failure detection and dissemination, sans-IO.

Events in (with the time ``now`` in seconds, passed by the caller), instructions
out. The node calls :meth:`Swim.tick` every ``config.tick_interval``, hands in
every message a peer link delivers, and carries out the returned
:class:`Send`, :class:`MemberChanged` and :class:`AdvertChanged` in order.
No sockets, no asyncio, no clock: given the same ``rng`` and the same events,
a core says exactly the same things.

Failure detection: each ``probe_interval`` the core pings the next live member
of a shuffled round. No Ack within ``probe_timeout``: it asks up to
``indirect_probes`` other ALIVE members to ping it (PingReq) and relay the
Ack. No Ack by the end of the interval: SUSPECT. A suspicion not refuted
within ``suspect_timeout`` makes the member DEAD. A member that hears it is
suspected (or declared dead) refutes by raising its incarnation.

Dissemination: every change is piggybacked on Pings, Acks and PingReqs
(:mod:`mpreg.membership.gossip`); important news (our advert, our leave, a
refutation, a death whose suspicion we raised) is also pushed at once to every
live member. A link that opens exchanges full state (Sync). The state rules
are :mod:`mpreg.membership.view`'s.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from mpreg.membership.config import SwimConfig
from mpreg.membership.messages import (
    Ack,
    Instruction,
    Member,
    MemberInfo,
    MemberUpdate,
    Ping,
    PingReq,
    Push,
    Send,
    Sync,
    Update,
)
from mpreg.membership.order import ProbeOrder, sample
from mpreg.membership.rules import ALIVE, LIVE
from mpreg.membership.table import Baseline
from mpreg.membership.validate import (
    valid_advert_update,
    valid_entries,
    valid_info,
    valid_member_update,
    valid_message,
)
from mpreg.membership.view import View


@dataclass(slots=True)
class _Probe:
    """An outstanding probe of ``target``: PingReqs at ``indirect_at``, SUSPECT at ``suspect_at``.

    ``indirect_sent``: the PingReqs went out (or, with nobody to ask, never will).
    """

    target: str
    indirect_at: float
    suspect_at: float
    indirect_sent: bool = False


@dataclass(frozen=True, slots=True)
class _Relay:
    """A Ping we sent for ``requester``'s PingReq: its Ack goes back as ``Ack(seq)``."""

    requester: str
    seq: int
    expires: float


_DEFAULT = SwimConfig()


class Swim:
    """One node's view of the cluster, kept by SWIM. See the module docstring.

    ``rng`` makes every random choice (probe order, helpers, first probe's
    phase); pass a seeded ``random.Random`` for reproducible runs.
    ``baseline`` (simulators): a shared read-only starting view, see
    :class:`~mpreg.membership.table.Baseline`.
    """

    def __init__(
        self,
        me: MemberInfo,
        *,
        config: SwimConfig = _DEFAULT,
        rng: random.Random | None = None,
        now: float = 0.0,
        baseline: Baseline | None = None,
    ) -> None:
        self._me = me
        self._id = me.node_id
        self._cfg = config
        self._rng = rng if rng is not None else random.Random()
        self._view = View(me, config, now, baseline)
        self._table = self._view.table
        self._probes: dict[int, _Probe] = {}
        self._relays: dict[int, _Relay] = {}
        self._seq = 0
        self._order: ProbeOrder | None = None
        self._last_tick = now
        # A random phase, so cores started together do not probe in lockstep.
        self._next_probe = now + self._rng.uniform(0.0, config.probe_interval)

    def __repr__(self) -> str:
        me = self._view.own()
        return f"<Swim {self._me.name} {me.state.name}@{me.incarnation} of {len(self._table)}>"

    # --- questions --------------------------------------------------------------

    @property
    def incarnation(self) -> int:
        return self._view.own().incarnation

    @property
    def config(self) -> SwimConfig:
        return self._cfg

    def member(self, node_id: str) -> Member | None:
        return self._table.get(node_id)

    def members(self) -> list[Member]:
        """Everyone known, self included, DEAD and LEFT ones until they are reaped."""
        return list(self._table.members())

    def alive(self) -> list[Member]:
        """The other members that may be routed to: ALIVE and SUSPECT (the node's policy decides).

        SUSPECT ones are included: a suspicion is often refuted within a round trip.
        """
        me = self._id
        return [m for m in self._table.members() if m.state in LIVE and m.node_id != me]

    def advert(self, node_id: str) -> tuple[int, object] | None:
        """``(version, advert)`` of a member (self included), or None."""
        return self._table.advert(node_id)

    def adverts(self) -> dict[str, tuple[int, object]]:
        return self._table.adverts()

    def pending_updates(self) -> list[tuple[Update, int]]:
        """The piggyback buffer: each queued update and how often it was sent."""
        return self._view.pending()

    # --- events -----------------------------------------------------------------

    def linked(self, info: MemberInfo, now: float) -> list[Instruction]:
        """A link to ``info`` opened and authenticated: send it our full state.

        Learns it as ALIVE if unknown; an open link also answers any probe of it.
        """
        if not valid_info(info) or info.node_id == self._id or self._view.left():
            return []
        out: list[Instruction] = []
        if self._table.get(info.node_id) is None:
            joiner = MemberUpdate(info, 0, ALIVE)
            self._view.merge_member(joiner, now, out)
            # A newcomer is news every member wants now (to link to it), not in a few rounds.
            self._view.push((joiner,), out)
        for seq in [s for s, p in self._probes.items() if p.target == info.node_id]:
            del self._probes[seq]
        out.append(Send(info.node_id, self._view.sync()))
        return out

    def received(self, sender: str, message: object, now: float) -> list[Instruction]:
        """A message from ``sender``'s link. Malformed or unknown messages are ignored."""
        if type(sender) is not str or not valid_message(message) or self._view.left():
            return []
        out: list[Instruction] = []
        view = self._view
        match message:
            case Ping(seq=seq, updates=updates):
                view.merge(valid_entries(updates), now, out, sender)
                out.append(Send(sender, Ack(seq, view.piggyback(sender))))
            case Ack(seq=seq, updates=updates):
                view.merge(valid_entries(updates), now, out, sender)
                self._acked(seq, out)
            case PingReq(seq=seq, target=target, updates=updates):
                view.merge(valid_entries(updates), now, out, sender)
                self._relay(sender, seq, target, now, out)
            case Sync(members=members, adverts=adverts):
                view.merge([u for u in members if valid_member_update(u)], now, out, sender)
                view.merge([u for u in adverts if valid_advert_update(u)], now, out)
            case Push(updates=updates):
                view.merge(valid_entries(updates), now, out, sender)
        return out

    def link_closed(self, node_id: str, now: float) -> list[Instruction]:
        """The link to ``node_id`` closed: probe it at once, through others.

        That alone does not make it DEAD: it becomes SUSPECT only if no helper
        reaches it within ``probe_interval`` (with no helper to ask, after
        ``probe_timeout``), and DEAD only after ``suspect_timeout`` more.
        """
        member = self._table.get(node_id) if type(node_id) is str else None
        if member is None or member.state not in LIVE or node_id == self._id:
            return []
        if self._view.left() or any(p.target == node_id for p in self._probes.values()):
            return []
        out: list[Instruction] = []
        probe = _Probe(node_id, now, now + self._cfg.probe_interval)
        seq = self._next_seq()
        self._probes[seq] = probe
        if not self._ask_helpers(seq, probe, out):
            probe.indirect_at = now + self._cfg.probe_timeout  # nobody to ask: suspect then
        return out

    def tick(self, now: float) -> list[Instruction]:
        """Time passed: expire probes, probe the next member, time out suspicions, reap."""
        if self._view.left():
            return []
        out: list[Instruction] = []
        self._stalled(now)
        self._expire_probes(now, out)
        if now >= self._next_probe:
            self._next_probe += self._cfg.probe_interval
            if self._next_probe <= now:  # the node stalled: no burst of catch-up probes
                self._next_probe = now + self._cfg.probe_interval
            self._probe(now, out)
        self._view.expire(now, out)
        if self._relays:
            for seq in [s for s, r in self._relays.items() if r.expires <= now]:
                del self._relays[seq]
        return out

    def set_advert(self, advert: object, now: float, *, push: bool = True) -> list[Instruction]:
        """This node's own advert changed: a new version, pushed to all and piggybacked.

        ``push=False`` for news that may take a few rounds (a refreshed load
        figure): piggybacked only, so it costs no extra message.
        """
        out: list[Instruction] = []
        if not self._view.left():
            self._view.set_advert(advert, out, push=push)
        return out

    def leave(self, now: float) -> list[Instruction]:
        """Graceful leave: LEFT at a higher incarnation, pushed to all. The core then goes quiet."""
        out: list[Instruction] = []
        if not self._view.left():
            self._probes.clear()
            self._relays.clear()
            self._view.leave(now, out)
        return out

    def _stalled(self, now: float) -> None:
        """Ticks came late (our own process stalled): extend our deadlines by the delay.

        While we were not running, Acks and refutations may have been waiting
        in our sockets; the node hands them in after this tick. Without the
        extension a stalled node would suspect the healthy members it was
        probing, exactly when it is the one at fault.
        """
        gap, tick = now - self._last_tick, self._cfg.tick_interval
        self._last_tick = now
        if gap <= 2.5 * tick:  # a late tick or two is jitter, not a stall
            return
        late = gap - tick
        for probe in self._probes.values():
            probe.indirect_at += late
            probe.suspect_at += late
        self._view.postpone(late)

    # --- probing ------------------------------------------------------------------

    def _probe(self, now: float, out: list[Instruction]) -> None:
        target = self._next_target()
        if target is None:
            return
        cfg = self._cfg
        seq = self._next_seq()
        self._probes[seq] = _Probe(target, now + cfg.probe_timeout, now + cfg.probe_interval)
        out.append(Send(target, Ping(seq, self._view.piggyback(target))))

    def _next_target(self) -> str | None:
        """The next live member of the round; a new shuffled round when one ends."""
        for _ in range(2):
            if self._order is None:
                self._order = ProbeOrder(*self._table.id_sequences(), self._rng)
            while (node_id := self._order.next()) is not None:
                member = self._table.get(node_id)
                if member is not None and member.state in LIVE and node_id != self._id:
                    return node_id
            self._order = None
        return None

    def _expire_probes(self, now: float, out: list[Instruction]) -> None:
        for seq, probe in list(self._probes.items()):
            indirect_due = not probe.indirect_sent and now >= probe.indirect_at
            if indirect_due and not self._ask_helpers(seq, probe, out):
                del self._probes[seq]  # nobody to ask (two members): suspect now
                self._view.suspect(probe.target, now, out)
                continue
            if now >= probe.suspect_at:
                del self._probes[seq]
                self._view.suspect(probe.target, now, out)

    def _ask_helpers(self, seq: int, probe: _Probe, out: list[Instruction]) -> bool:
        """Send PingReqs for ``probe`` to up to ``indirect_probes`` ALIVE members; False if none."""
        target, me, table = probe.target, self._id, self._table

        def helper(node_id: str) -> bool:
            member = table.get(node_id)
            return member is not None and member.state is ALIVE and node_id not in (target, me)

        first, second = table.id_sequences()
        helpers = sample(first, second, self._cfg.indirect_probes, helper, self._rng)
        for node_id in helpers:
            out.append(Send(node_id, PingReq(seq, target, self._view.piggyback(node_id))))
        probe.indirect_sent = bool(helpers)
        return probe.indirect_sent

    def _acked(self, seq: int, out: list[Instruction]) -> None:
        if self._probes.pop(seq, None) is not None:
            return
        relay = self._relays.pop(seq, None)
        if relay is not None:
            ack = Ack(relay.seq, self._view.piggyback(relay.requester))
            out.append(Send(relay.requester, ack))

    def _relay(
        self, requester: str, seq: int, target: str, now: float, out: list[Instruction]
    ) -> None:
        if target == self._id:  # asked to probe ourselves: we are the answer
            out.append(Send(requester, Ack(seq, self._view.piggyback(requester))))
            return
        mine = self._next_seq()
        self._relays[mine] = _Relay(requester, seq, now + self._cfg.probe_interval)
        out.append(Send(target, Ping(mine, self._view.piggyback(target))))

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq
