"""An in-memory network of Swim cores on a simulated clock, for tests.

Plays the node's part for each core: ticks it every ``tick_interval``, carries
its Sends over links with a latency (a Send with no open link is dropped, as
the node drops it), dials members it learns ALIVE (``auto_dial``) and closes
links to members it learns DEAD or LEFT, telling the other end
``link_closed``. Adversity: per-pair message loss (``block``), random loss,
partitions, and pauses (a paused core neither ticks nor handles messages;
what is sent to it waits in its link, as in a socket buffer, until it resumes).
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from mpreg.membership import (
    AdvertChanged,
    Instruction,
    MemberChanged,
    MemberInfo,
    MemberState,
    Send,
    Swim,
    SwimConfig,
)


def info(name: str) -> MemberInfo:
    return MemberInfo(f"id-{name}", name, f"127.0.0.1:{7000 + sum(map(ord, name))}")


@dataclass(frozen=True)
class Change:
    """A MemberChanged or AdvertChanged one core reported, and when."""

    at: float
    observer: str
    about: str
    old: MemberState | None
    new: MemberState | None  # None for an advert
    version: int = 0


class Net:
    """Cores by name, the links between them, and a clock."""

    def __init__(
        self,
        names: Iterable[str] = (),
        *,
        config: SwimConfig | None = None,
        seed: int = 1,
        latency: float = 0.001,
        loss: float = 0.0,
        auto_dial: bool = True,
    ) -> None:
        self.config = config or SwimConfig()
        self.now = 0.0
        self.latency = latency
        self.loss = loss
        self.auto_dial = auto_dial
        self._rng = random.Random(seed)
        self._seed = seed
        self.cores: dict[str, Swim] = {}
        self.links: set[frozenset[str]] = set()
        self.blocked: set[frozenset[str]] = set()  # pairs whose messages are silently lost
        self.paused: set[str] = set()
        self.changes: list[Change] = []
        self.sent: Counter[str] = Counter()  # message type name -> how many were delivered
        self._queue: list[tuple[float, int, str, str, object]] = []
        self._backlog: dict[str, list[tuple[str, object]]] = {}
        self._closed_while_paused: dict[str, list[str]] = {}
        self._order = 0
        self._ticks = 0
        for name in names:
            self.add(name)

    # --- building ---------------------------------------------------------------

    def add(self, name: str) -> Swim:
        seed = self._seed * 1000 + len(self.cores)
        core = Swim(info(name), config=self.config, rng=random.Random(seed), now=self.now)
        self.cores[name] = core
        return core

    def link(self, a: str, b: str) -> None:
        """Open a link between ``a`` and ``b``: both cores hear ``linked`` and Sync."""
        if frozenset((a, b)) in self.links:
            return
        self.links.add(frozenset((a, b)))
        for me, other in ((a, b), (b, a)):
            if me not in self.paused:
                self._handle(me, self.cores[me].linked(info(other), self.now))

    def cut(self, a: str, b: str) -> None:
        """Close the link between ``a`` and ``b``: both ends hear ``link_closed``."""
        if frozenset((a, b)) not in self.links:
            return
        self.links.discard(frozenset((a, b)))
        for me, other in ((a, b), (b, a)):
            if me in self.paused:  # it notices when it runs again
                self._closed_while_paused.setdefault(me, []).append(other)
            else:
                self._handle(me, self.cores[me].link_closed(info(other).node_id, self.now))

    def mesh(self) -> None:
        names = list(self.cores)
        for i, a in enumerate(names):
            for b in names[i + 1 :]:
                self.link(a, b)

    def pause(self, name: str) -> None:
        self.paused.add(name)

    def resume(self, name: str) -> None:
        self.paused.discard(name)
        for other in self._closed_while_paused.pop(name, []):
            self._handle(name, self.cores[name].link_closed(info(other).node_id, self.now))
        for sender, message in self._backlog.pop(name, []):
            if frozenset((sender, name)) in self.links:
                self._deliver(sender, name, message)

    def inject(self, to: str, sender: str, message: object) -> None:
        """Hand ``to`` a message as if ``sender``'s link delivered it now."""
        self._handle(to, self.cores[to].received(info(sender).node_id, message, self.now))

    def act(self, name: str, instructions: list[Instruction]) -> None:
        """Carry out what a core returned from a call the test made itself."""
        self._handle(name, instructions)

    # --- running ----------------------------------------------------------------

    def run(self, seconds: float) -> None:
        """Advance the clock by ``seconds``: deliveries and ticks in time order."""
        end = self.now + seconds
        step = self.config.tick_interval
        while True:
            next_tick = (self._ticks + 1) * step
            if self._queue and self._queue[0][0] <= min(next_tick, end):
                at, _, sender, to, message = heapq.heappop(self._queue)
                self.now = max(self.now, at)
                self._arrive(sender, to, message)
                continue
            if next_tick > end:
                break
            self.now = next_tick
            self._ticks += 1
            for name, core in self.cores.items():
                if name not in self.paused:
                    self._handle(name, core.tick(self.now))
        self.now = end

    def run_until(self, done: object, limit: float, step: float = 0.05) -> float:
        """Run until ``done()`` is true; return the time it took (fails past ``limit``)."""
        start = self.now
        assert callable(done)
        while not done():
            assert self.now - start < limit, f"not done within {limit} s"
            self.run(step)
        return self.now - start

    # --- what cores said ----------------------------------------------------------

    def state(self, observer: str, about: str) -> MemberState | None:
        member = self.cores[observer].member(info(about).node_id)
        return member.state if member else None

    def everyone_sees(self, about: str, state: MemberState, among: Iterable[str] = ()) -> bool:
        observers = list(among) or [n for n in self.cores if n != about]
        return all(self.state(o, about) is state for o in observers)

    def first_change(self, about: str, new: MemberState, since: float = 0.0) -> Change | None:
        node_id = info(about).node_id
        for change in self.changes:
            if change.about == node_id and change.new is new and change.at >= since:
                return change
        return None

    # --- plumbing -----------------------------------------------------------------

    def _handle(self, name: str, instructions: list[Instruction]) -> None:
        for instruction in instructions:
            match instruction:
                case Send(to=to, message=message):
                    self._send(name, to, message)
                case MemberChanged(member=member, old=old, new=new):
                    self.changes.append(Change(self.now, name, member.node_id, old, new))
                    self._react(name, member.info, new)
                case AdvertChanged(node_id=node_id, version=version):
                    self.changes.append(Change(self.now, name, node_id, None, None, version))

    def _react(self, name: str, about: MemberInfo, new: MemberState) -> None:
        """The node's part: dial new ALIVE members, close links to DEAD and LEFT ones."""
        if about.name not in self.cores:
            return
        if new is MemberState.ALIVE and self.auto_dial:
            self.link(name, about.name)
        elif new in (MemberState.DEAD, MemberState.LEFT):
            self.cut(name, about.name)

    def _send(self, sender: str, to_id: str, message: object) -> None:
        to = to_id.removeprefix("id-")
        pair = frozenset((sender, to))
        if pair not in self.links or pair in self.blocked:
            return
        if self.loss and self._rng.random() < self.loss:
            return
        self._order += 1
        heapq.heappush(self._queue, (self.now + self.latency, self._order, sender, to, message))

    def _arrive(self, sender: str, to: str, message: object) -> None:
        if frozenset((sender, to)) not in self.links:
            return  # the link closed while it was in flight
        if to in self.paused:
            self._backlog.setdefault(to, []).append((sender, message))
            return
        self._deliver(sender, to, message)

    def _deliver(self, sender: str, to: str, message: object) -> None:
        self.sent[type(message).__name__] += 1
        self._handle(to, self.cores[to].received(info(sender).node_id, message, self.now))
