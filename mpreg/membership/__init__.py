"""Cluster membership: a sans-IO SWIM core (failure detection and gossip).

:class:`Swim` is pure (events and the time in, instructions out); the node
drives it over its peer links. Messages, updates and instructions are plain
frozen dataclasses.
"""

from mpreg.membership.config import SwimConfig
from mpreg.membership.messages import (
    Ack,
    AdvertChanged,
    AdvertUpdate,
    Instruction,
    Member,
    MemberChanged,
    MemberInfo,
    MemberState,
    MemberUpdate,
    Message,
    Ping,
    PingReq,
    Push,
    Send,
    Sync,
    Update,
)
from mpreg.membership.swim import Swim
from mpreg.membership.table import Baseline

__all__ = [
    "Ack",
    "AdvertChanged",
    "AdvertUpdate",
    "Baseline",
    "Instruction",
    "Member",
    "MemberChanged",
    "MemberInfo",
    "MemberState",
    "MemberUpdate",
    "Message",
    "Ping",
    "PingReq",
    "Push",
    "Send",
    "Swim",
    "SwimConfig",
    "Sync",
    "Update",
]
