"""What one core knows and how news changes it: merging, refuting, timers, gossip out.

:class:`View` owns the member table, the piggyback buffer and the timers that
belong to member states (suspicions that turn DEAD, graves that are reaped).
:class:`~mpreg.membership.swim.Swim` drives it from the events and adds the
probing. Every method appends the instructions it causes to ``out``.
"""

from __future__ import annotations

from mpreg.membership.config import SwimConfig
from mpreg.membership.gossip import Piggyback
from mpreg.membership.messages import (
    AdvertChanged,
    AdvertUpdate,
    Instruction,
    Member,
    MemberChanged,
    MemberInfo,
    MemberUpdate,
    Push,
    Send,
    Sync,
    Update,
)
from mpreg.membership.rules import (
    ALIVE,
    DEAD,
    GONE,
    LEFT,
    LIVE,
    SUSPECT,
    needs_refuting,
    supersedes,
)
from mpreg.membership.table import Baseline, MemberTable


class View:
    """One node's table of the cluster, kept by SWIM's rules."""

    __slots__ = (
        "_cfg",
        "_gossip",
        "_graves",
        "_id",
        "_me",
        "_mine",
        "_own",
        "_suspects",
        "table",
    )

    def __init__(
        self, me: MemberInfo, config: SwimConfig, now: float, baseline: Baseline | None
    ) -> None:
        self._me = me
        self._id = me.node_id
        self._cfg = config
        self.table = MemberTable(baseline)
        known = self.table.get(me.node_id)
        if known is None or known.state is not ALIVE or known.info != me:
            known = Member(me, 0, ALIVE, now)
            self.table.put(known)
        self._own = known  # our own record, also in the table (asked on every event)
        self._gossip = Piggyback(config.retransmit_mult)
        self._suspects: dict[str, float] = {}  # node id -> when its suspicion makes it DEAD
        self._mine: set[str] = set()  # suspicions this core raised: it pushes their deaths
        self._graves: dict[str, float] = {}  # DEAD/LEFT node id -> when it is forgotten

    def own(self) -> Member:
        return self._own

    def left(self) -> bool:
        return self._own.state is LEFT

    def _set_own(self, member: Member) -> None:
        self._own = member
        self.table.put(member)

    def pending(self) -> list[tuple[Update, int]]:
        return self._gossip.pending()

    # --- news in ------------------------------------------------------------------

    def merge(
        self, updates: list[Update], now: float, out: list[Instruction], sender: str = ""
    ) -> None:
        """Apply news that came from ``sender`` ("": from ourselves)."""
        for update in updates:
            if isinstance(update, MemberUpdate):
                self.merge_member(update, now, out, sender)
            else:
                self._merge_advert(update, out)

    def merge_member(
        self, update: MemberUpdate, now: float, out: list[Instruction], sender: str = ""
    ) -> None:
        node_id = update.info.node_id
        if node_id == self._id:
            if needs_refuting(update, self.own()):
                self._refute(update, out, sender)
            return
        current = self.table.get(node_id)
        if current is not None and not supersedes(update, current):
            return
        self._gossip.add(update)
        if current is not None and current.state is update.state:
            # Only the incarnation moved: same state, same timers.
            self.table.put(Member(current.info, update.incarnation, current.state, current.since))
            return
        info = current.info if current else update.info
        member = Member(info, update.incarnation, update.state, now)
        self.table.put(member)
        self._suspects.pop(node_id, None)
        self._mine.discard(node_id)
        self._graves.pop(node_id, None)
        if update.state is SUSPECT:
            self._suspects[node_id] = now + self._cfg.suspect_timeout
        elif update.state in GONE:
            self._graves[node_id] = now + self._cfg.dead_reap
            self.table.drop_advert(node_id)  # the node drops its routes on MemberChanged
        out.append(MemberChanged(member, current.state if current else None, update.state))

    def _merge_advert(self, update: AdvertUpdate, out: list[Instruction]) -> None:
        node_id = update.node_id
        if node_id == self._id:
            return
        member = self.table.get(node_id)
        if member is not None and member.state in GONE:
            return
        have = self.table.advert(node_id)
        if have is not None and have[0] >= update.version:
            return
        self.table.put_advert(node_id, update.version, update.advert)
        self._gossip.add(update)
        out.append(AdvertChanged(node_id, update.version, update.advert))

    def _refute(self, claim: MemberUpdate, out: list[Instruction], sender: str) -> None:
        """Someone says we are SUSPECT or DEAD (or more): we are ALIVE, one incarnation higher.

        The answer is pushed to every live member and, always, to ``sender``:
        it may be one we hold DEAD ourselves (after a partition, each side
        buried the other), and without our answer it would never learn better.
        """
        mine = self.own()
        incarnation = max(claim.incarnation, mine.incarnation) + 1
        self._set_own(Member(self._me, incarnation, ALIVE, mine.since))
        update = MemberUpdate(self._me, incarnation, ALIVE)
        self._gossip.add(update)
        news: tuple[Update, ...] = (update,)
        advert = self.table.advert(self._id)
        if claim.state in GONE and advert is not None:
            # Those who buried us dropped our advert: give it back with the news.
            news = (update, AdvertUpdate(self._id, advert[0], advert[1]))
        self.push(news, out)
        if sender and sender != self._id:
            member = self.table.get(sender)
            pushed = self._cfg.push and member is not None and member.state in LIVE
            if not pushed:
                out.append(Send(sender, Push(news)))

    # --- our own news ---------------------------------------------------------------

    def set_advert(self, advert: object, out: list[Instruction], *, push: bool = True) -> None:
        have = self.table.advert(self._id)
        update = AdvertUpdate(self._id, (have[0] if have else 0) + 1, advert)
        self.table.put_advert(self._id, update.version, advert)
        self._gossip.add(update)
        if push:
            self.push((update,), out)

    def leave(self, now: float, out: list[Instruction]) -> None:
        update = MemberUpdate(self._me, self.own().incarnation + 1, LEFT)
        self._set_own(Member(self._me, update.incarnation, LEFT, now))
        self._gossip.add(update)
        self.push((update,), out)

    def suspect(self, node_id: str, now: float, out: list[Instruction]) -> None:
        """Our probe of ``node_id`` failed: SUSPECT, and tell it so it can refute."""
        member = self.table.get(node_id)
        if member is None or member.state is not ALIVE:
            return
        update = MemberUpdate(member.info, member.incarnation, SUSPECT)
        self.merge_member(update, now, out)
        self._mine.add(node_id)
        # Tell the suspect itself at once: if it is alive it refutes within a round trip.
        out.append(Send(node_id, Push((update,))))

    # --- timers ---------------------------------------------------------------------

    def expire(self, now: float, out: list[Instruction]) -> None:
        """Suspicions past their time become DEAD; graves past ``dead_reap`` are forgotten."""
        if self._suspects:
            for node_id in [n for n, t in self._suspects.items() if t <= now]:
                self._declare_dead(node_id, now, out)
        if self._graves:
            for node_id in [n for n, t in self._graves.items() if t <= now]:
                del self._graves[node_id]
                self.table.forget(node_id)

    def postpone(self, delay: float) -> None:
        """Push every suspicion's deadline back by ``delay`` (we were stalled)."""
        for node_id in self._suspects:
            self._suspects[node_id] += delay

    def _declare_dead(self, node_id: str, now: float, out: list[Instruction]) -> None:
        member = self.table.get(node_id)
        if member is None or member.state is not SUSPECT:
            self._suspects.pop(node_id, None)
            return
        raised = node_id in self._mine
        update = MemberUpdate(member.info, member.incarnation, DEAD)
        self.merge_member(update, now, out)
        # Every holder of the suspicion times it out, but only its raisers push the
        # death to all: one broadcast per death, not one per member.
        if raised:
            self.push((update,), out)

    # --- news out -------------------------------------------------------------------

    def piggyback(self, to: str) -> tuple[Update, ...]:
        """Updates for a message to ``to``, led by its own record if we doubt it (so it refutes)."""
        most = self._cfg.max_piggyback
        member = self.table.get(to)
        if member is None or member.state is ALIVE:
            return self._gossip.take(most, len(self.table))
        about = MemberUpdate(member.info, member.incarnation, member.state)
        rest = self._gossip.take(most - 1, len(self.table))
        return (about, *(u for u in rest if u != about))

    def push(self, updates: tuple[Update, ...], out: list[Instruction]) -> None:
        """Send ``updates`` at once to every live member (ALIVE and SUSPECT), if pushing is on."""
        if not self._cfg.push:
            return
        message = Push(updates)
        me = self._id
        out.extend(
            Send(m.info.node_id, message)
            for m in self.table.members()
            if m.state in LIVE and m.info.node_id != me
        )

    def sync(self) -> Sync:
        """Our full state: every member record (self and the dead included) and every advert."""
        members = tuple(MemberUpdate(m.info, m.incarnation, m.state) for m in self.table.members())
        adverts = tuple(AdvertUpdate(n, v, a) for n, (v, a) in self.table.adverts().items())
        return Sync(members, adverts)
