"""SWIM's incarnation rules: which update about a member wins over what we hold.

A member's incarnation only it raises (to refute a suspicion, or to leave), so
for one member the pair (incarnation, state) orders all news about it:

- ALIVE@i overrides ALIVE, SUSPECT and DEAD at j < i (a dead member that
  comes back rejoins with a higher incarnation);
- SUSPECT@i overrides ALIVE@j for i >= j, and SUSPECT@j for i > j (only
  ALIVE brings a DEAD member back);
- DEAD@i overrides ALIVE and SUSPECT at j <= i;
- LEFT@i overrides ALIVE, SUSPECT and DEAD at j <= i, and LEFT is final.

Anything else is stale and changes nothing.
"""

from __future__ import annotations

from mpreg.membership.messages import Member, MemberState, MemberUpdate

ALIVE = MemberState.ALIVE
SUSPECT = MemberState.SUSPECT
DEAD = MemberState.DEAD
LEFT = MemberState.LEFT
GONE = (DEAD, LEFT)
LIVE = (ALIVE, SUSPECT)


def supersedes(update: MemberUpdate, current: Member) -> bool:
    """True if ``update`` is newer than ``current`` (a record of the same member)."""
    have, new = current.incarnation, update.incarnation
    state = current.state
    if state is LEFT:
        return False
    match update.state:
        case MemberState.ALIVE:
            return new > have
        case MemberState.SUSPECT:
            if state is ALIVE:
                return new >= have
            return state is SUSPECT and new > have
        case MemberState.DEAD:
            return state is not DEAD and new >= have
        case MemberState.LEFT:
            return new >= have
    return False


def needs_refuting(update: MemberUpdate, mine: Member) -> bool:
    """True if ``update`` about this very node contradicts its own record.

    Anything but ALIVE at our incarnation or above is a false claim (we are
    here to say so), and so is ALIVE above it (we never said it).
    """
    if mine.state is LEFT:
        return False
    if update.state is ALIVE:
        return update.incarnation > mine.incarnation
    return update.incarnation >= mine.incarnation
