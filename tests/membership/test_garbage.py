"""A core survives any message: malformed or unknown ones are ignored, never raised on."""

from __future__ import annotations

import random

import pytest
from swimnet import info

from mpreg.membership import (
    Ack,
    AdvertUpdate,
    MemberInfo,
    MemberState,
    MemberUpdate,
    Ping,
    PingReq,
    Push,
    Send,
    Swim,
    Sync,
)

B, C = info("b"), info("c")


def _unset(cls: type) -> object:
    """An instance with no field set, as a crafted pickle can produce."""
    return object.__new__(cls)


GARBAGE: list[object] = [
    None,
    1,
    "ping",
    b"\x00",
    {"seq": 1},
    object(),
    Ping,  # the class, not an instance
    Ping("1"),  # type: ignore[arg-type]
    Ping(True),
    Ping(1, None),  # type: ignore[arg-type]
    Ping(1, [MemberUpdate(C, 0, MemberState.DEAD)]),  # type: ignore[arg-type]
    Ack(None),  # type: ignore[arg-type]
    PingReq(1, None),  # type: ignore[arg-type]
    PingReq(1, "id-c", "x"),  # type: ignore[arg-type]
    Sync(None, ()),  # type: ignore[arg-type]
    Sync((), 5),  # type: ignore[arg-type]
    Push("updates"),  # type: ignore[arg-type]
    _unset(Ping),
    _unset(PingReq),
    _unset(Sync),
    _unset(Push),
    MemberUpdate(C, 0, MemberState.DEAD),  # an update is not a message
    Send("id-c", Ping(1)),
]

BAD_ENTRIES: list[object] = [
    None,
    "x",
    MemberUpdate(None, 0, MemberState.DEAD),  # type: ignore[arg-type]
    MemberUpdate(C, -1, MemberState.DEAD),
    MemberUpdate(C, 1.5, MemberState.DEAD),  # type: ignore[arg-type]
    MemberUpdate(C, 1, "dead"),  # type: ignore[arg-type]
    MemberUpdate(MemberInfo("", "c", "x"), 1, MemberState.DEAD),
    MemberUpdate(MemberInfo(5, "c", "x"), 1, MemberState.DEAD),  # type: ignore[arg-type]
    AdvertUpdate(None, 1, "x"),  # type: ignore[arg-type]
    AdvertUpdate("id-c", "2", "x"),  # type: ignore[arg-type]
    _unset(MemberUpdate),
    _unset(AdvertUpdate),
    _unset(MemberInfo),
    MemberUpdate(_unset(MemberInfo), 1, MemberState.DEAD),  # type: ignore[arg-type]
]


def core() -> Swim:
    swim = Swim(info("me"), rng=random.Random(1))
    swim.linked(B, 0.0)
    swim.linked(C, 0.0)
    return swim


@pytest.mark.parametrize("message", GARBAGE, ids=lambda m: type(m).__name__)
def test_a_malformed_message_is_ignored(message: object) -> None:
    swim = core()
    before = [(m.info, m.incarnation, m.state) for m in swim.members()]
    assert swim.received(B.node_id, message, 1.0) == []
    assert [(m.info, m.incarnation, m.state) for m in swim.members()] == before


@pytest.mark.parametrize("entry", BAD_ENTRIES, ids=lambda e: type(e).__name__)
def test_bad_entries_are_skipped_and_good_ones_in_the_same_message_still_count(
    entry: object,
) -> None:
    swim = core()
    good = MemberUpdate(C, 3, MemberState.ALIVE)
    for message in (
        Push((entry, good)),  # type: ignore[arg-type]
        Ping(1, (entry, good)),  # type: ignore[arg-type]
        Sync((entry, good), (entry,)),  # type: ignore[arg-type]
    ):
        swim.received(B.node_id, message, 1.0)
    member = swim.member(C.node_id)
    assert member is not None
    assert (member.incarnation, member.state) == (3, MemberState.ALIVE)


def test_a_sender_that_is_not_a_node_id_is_ignored() -> None:
    swim = core()
    assert swim.received(None, Ping(1), 1.0) == []  # type: ignore[arg-type]
    assert swim.link_closed(None, 1.0) == []  # type: ignore[arg-type]
    assert swim.linked(None, 1.0) == []  # type: ignore[arg-type]


def test_an_unknown_sender_is_still_answered() -> None:
    swim = core()
    (reply,) = swim.received("id-stranger", Ping(4), 1.0)
    assert reply == Send("id-stranger", Ack(4, reply.message.updates))  # type: ignore[union-attr]
