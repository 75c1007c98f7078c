"""What SWIM cores say to each other and to the node that drives them.

Three kinds of plain data, all frozen and slotted so the node can pickle them
and ``match`` on them:

- records: :class:`MemberInfo` (who a node is, never changes for its id) and
  :class:`Member` (what this core believes about it now);
- updates, piggybacked on messages or pushed: :class:`MemberUpdate` and
  :class:`AdvertUpdate`;
- messages between cores (:class:`Ping`, :class:`Ack`, :class:`PingReq`,
  :class:`Sync`, :class:`Push`) and instructions to the node (:class:`Send`,
  :class:`MemberChanged`, :class:`AdvertChanged`).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class MemberState(Enum):
    """A member's state as one core sees it. LEFT is final for a node id."""

    ALIVE = "alive"
    SUSPECT = "suspect"
    DEAD = "dead"
    LEFT = "left"


@dataclass(frozen=True, slots=True)
class MemberInfo:
    """The identity of a node; never changes for a node id (a restart takes a new id)."""

    node_id: str
    name: str
    address: str  # host:port others dial


@dataclass(slots=True)
class Member:
    """One core's record of a member. The core replaces records, never mutates them."""

    info: MemberInfo
    incarnation: int
    state: MemberState
    since: float  # `now` of its last state change

    def __repr__(self) -> str:
        return f"<Member {self.info.name} {self.state.name}@{self.incarnation}>"

    @property
    def node_id(self) -> str:
        return self.info.node_id


# --- updates: piggybacked on Ping/Ack/PingReq, carried by Push and Sync ----------


@dataclass(frozen=True, slots=True)
class MemberUpdate:
    """``info`` is in ``state`` at ``incarnation``; merged with the SWIM incarnation rules."""

    info: MemberInfo
    incarnation: int
    state: MemberState


@dataclass(frozen=True, slots=True)
class AdvertUpdate:
    """Member ``node_id``'s advert at ``version``; opaque to the core, the higher version wins."""

    node_id: str
    version: int
    advert: object


Update = MemberUpdate | AdvertUpdate


# --- messages between cores ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Ping:
    """Are you there? Answered with ``Ack(seq)``."""

    seq: int
    updates: tuple[Update, ...] = ()


@dataclass(frozen=True, slots=True)
class Ack:
    """The answer to ``Ping(seq)``, from its target or relayed by a PingReq helper."""

    seq: int
    updates: tuple[Update, ...] = ()


@dataclass(frozen=True, slots=True)
class PingReq:
    """Probe ``target`` for me: the receiver pings it and relays ``Ack(seq)`` back on success."""

    seq: int
    target: str
    updates: tuple[Update, ...] = ()


@dataclass(frozen=True, slots=True)
class Sync:
    """Full state (push-pull anti-entropy), exchanged both ways when a link opens."""

    members: tuple[MemberUpdate, ...]
    adverts: tuple[AdvertUpdate, ...]


@dataclass(frozen=True, slots=True)
class Push:
    """Important news sent at once to every live member: the fast path in a full mesh."""

    updates: tuple[Update, ...]


Message = Ping | Ack | PingReq | Sync | Push


# --- instructions to the node -------------------------------------------------


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``message`` to node ``to``; the node drops it if it has no open link to it."""

    to: str
    message: Message


@dataclass(frozen=True, slots=True)
class MemberChanged:
    """``member`` went from ``old`` (None: newly learned) to ``new``.

    The node dials new ALIVE members it has no link to, stops routing to
    SUSPECT ones as its policy says, and drops DEAD/LEFT ones' endpoints and
    closes their links.
    """

    member: Member
    old: MemberState | None
    new: MemberState


@dataclass(frozen=True, slots=True)
class AdvertChanged:
    """A newer advert of another member was learned."""

    node_id: str
    version: int
    advert: object


Instruction = Send | MemberChanged | AdvertChanged
