"""Checks that a message from a peer is well formed, field by field.

The node hands the core whatever a peer sent; a buggy or hostile peer may send
any object, with any field types, or even a slotted instance with a field
never set (pickle can build one). The core acts only on what passes here and
ignores the rest, so no message can raise inside it.
"""

from __future__ import annotations

from mpreg.membership.messages import (
    Ack,
    AdvertUpdate,
    MemberInfo,
    MemberState,
    MemberUpdate,
    Ping,
    PingReq,
    Push,
    Sync,
    Update,
)

_MISSING = object()


def _int(value: object) -> bool:
    return type(value) is int  # bool is not an incarnation


def _str(value: object) -> bool:
    return type(value) is str


def valid_info(info: object) -> bool:
    return (
        type(info) is MemberInfo
        and _str(getattr(info, "node_id", None))
        and bool(info.node_id)
        and _str(getattr(info, "name", None))
        and _str(getattr(info, "address", None))
    )


def valid_member_update(update: object) -> bool:
    if type(update) is not MemberUpdate:
        return False
    incarnation = getattr(update, "incarnation", None)
    return (
        valid_info(getattr(update, "info", None))
        and _int(incarnation)
        and incarnation >= 0  # type: ignore[operator]
        and isinstance(getattr(update, "state", None), MemberState)
    )


def valid_advert_update(update: object) -> bool:
    return (
        type(update) is AdvertUpdate
        and _str(getattr(update, "node_id", None))
        and bool(update.node_id)
        and _int(getattr(update, "version", None))
        and getattr(update, "advert", _MISSING) is not _MISSING
    )


def valid_update(update: object) -> bool:
    return valid_member_update(update) or valid_advert_update(update)


def valid_entries(entries: object) -> list[Update]:
    """The well-formed updates among ``entries`` (none if it is not a tuple)."""
    if type(entries) is not tuple:
        return []
    return [u for u in entries if valid_update(u)]


def valid_message(message: object) -> bool:
    """The envelope is sound: known type, integer seq, string target, tuples of entries."""
    match message:
        case Ping() | Ack():
            return _int(getattr(message, "seq", None)) and _tuple(message, "updates")
        case PingReq():
            return (
                _int(getattr(message, "seq", None))
                and _str(getattr(message, "target", None))
                and _tuple(message, "updates")
            )
        case Sync():
            return _tuple(message, "members") and _tuple(message, "adverts")
        case Push():
            return _tuple(message, "updates")
    return False


def _tuple(message: object, name: str) -> bool:
    return type(getattr(message, name, None)) is tuple
