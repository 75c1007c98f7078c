"""The member and advert tables of one core, copy-on-write over an optional shared baseline.

A node holds one table of the whole cluster. A simulator of 10,000 members
cannot hold 10,000 private copies of a 10,000-member table (10^8 records), so
many cores may share one read-only :class:`Baseline` (everyone ALIVE, as if
already converged); each core's own dicts then hold only what differs from it
(``None`` marks a baseline entry this core removed). Without a baseline the
overlay is simply the whole table. Records are replaced, never mutated, so a
baseline record is never changed through a core.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Generic, TypeVar

from mpreg.membership.messages import Member, MemberInfo, MemberState

V = TypeVar("V")


class Baseline:
    """A shared, read-only starting view: every member ALIVE at incarnation 0.

    ``adverts`` maps node id to ``(version, advert)``.
    """

    __slots__ = ("adverts", "ids", "members")

    def __init__(
        self,
        infos: Iterable[MemberInfo],
        adverts: Mapping[str, tuple[int, object]] | None = None,
        since: float = 0.0,
    ) -> None:
        self.members: dict[str, Member] = {
            i.node_id: Member(i, 0, MemberState.ALIVE, since) for i in infos
        }
        self.ids: tuple[str, ...] = tuple(self.members)
        self.adverts: dict[str, tuple[int, object]] = dict(adverts or {})


class _Overlay(Generic[V]):
    """A dict over a read-only base: writes and deletions stay in the overlay."""

    __slots__ = ("_added", "_base", "_count", "_own")

    def __init__(self, base: Mapping[str, V]) -> None:
        self._base = base
        self._own: dict[str, V | None] = {}
        self._count = len(base)
        self._added: list[str] | None = None  # cache of added_keys(), None: stale

    def get(self, key: str) -> V | None:
        own = self._own
        if key in own:
            return own[key]
        return self._base.get(key)

    def set(self, key: str, value: V) -> bool:
        """Store ``value``; True if ``key`` is new to the table."""
        new = self.get(key) is None
        if new:
            self._count += 1
            self._added = None
        self._own[key] = value
        return new

    def remove(self, key: str) -> None:
        if self.get(key) is None:
            return
        self._count -= 1
        self._added = None
        if key in self._base:
            self._own[key] = None
        else:
            del self._own[key]

    def __len__(self) -> int:
        return self._count

    def items(self) -> Iterator[tuple[str, V]]:
        own = self._own
        for key, value in self._base.items():
            if key not in own:
                yield key, value
        for key, mine in own.items():
            if mine is not None:
                yield key, mine

    def added_keys(self) -> list[str]:
        """Keys present here but not in the base, in insertion order."""
        if self._added is None:
            base = self._base
            self._added = [k for k, v in self._own.items() if v is not None and k not in base]
        return self._added


class MemberTable:
    """Members (self included) and adverts, by node id."""

    __slots__ = ("_adverts", "_base_ids", "_members")

    def __init__(self, baseline: Baseline | None = None) -> None:
        self._members: _Overlay[Member] = _Overlay(baseline.members if baseline else {})
        self._adverts: _Overlay[tuple[int, object]] = _Overlay(baseline.adverts if baseline else {})
        self._base_ids: tuple[str, ...] = baseline.ids if baseline else ()

    def get(self, node_id: str) -> Member | None:
        return self._members.get(node_id)

    def put(self, member: Member) -> None:
        self._members.set(member.info.node_id, member)

    def forget(self, node_id: str) -> None:
        """Drop a member and its advert."""
        self._members.remove(node_id)
        self._adverts.remove(node_id)

    def __len__(self) -> int:
        return len(self._members)

    def members(self) -> Iterator[Member]:
        return (m for _, m in self._members.items())

    def id_sequences(self) -> tuple[Sequence[str], Sequence[str]]:
        """Every known id, as (shared baseline ids, ids added since); may name removed ones."""
        return self._base_ids, self._members.added_keys()

    def advert(self, node_id: str) -> tuple[int, object] | None:
        return self._adverts.get(node_id)

    def put_advert(self, node_id: str, version: int, advert: object) -> None:
        self._adverts.set(node_id, (version, advert))

    def drop_advert(self, node_id: str) -> None:
        self._adverts.remove(node_id)

    def adverts(self) -> dict[str, tuple[int, object]]:
        return dict(self._adverts.items())
