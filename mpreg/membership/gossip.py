"""The piggyback buffer: which updates ride on the next Ping, Ack or PingReq.

Each update is sent ``retransmit_mult * ceil(log2(N + 1))`` times (enough for
an epidemic to reach all N members with high probability), fewest
transmissions first, so news overtakes old news; then it is dropped. A newer
update about the same member (or the same member's advert) replaces the older
one and starts its count afresh.
"""

from __future__ import annotations

import math

from mpreg.membership.messages import MemberUpdate, Update

# ("m", node_id) for a member update, ("a", node_id) for an advert update.
_Key = tuple[str, str]


def _key(update: Update) -> _Key:
    if isinstance(update, MemberUpdate):
        return ("m", update.info.node_id)
    return ("a", update.node_id)


class Piggyback:
    """Pending updates and how often each was sent."""

    __slots__ = ("_entries", "_mult")

    def __init__(self, retransmit_mult: int) -> None:
        self._mult = retransmit_mult
        self._entries: dict[_Key, tuple[Update, int]] = {}

    def add(self, update: Update) -> None:
        """Queue ``update``, replacing any older update about the same thing."""
        self._entries[_key(update)] = (update, 0)

    def __len__(self) -> int:
        return len(self._entries)

    def limit(self, members: int) -> int:
        """How many times an update is sent in a cluster of ``members``."""
        return self._mult * max(1, math.ceil(math.log2(members + 1)))

    def take(self, most: int, members: int) -> tuple[Update, ...]:
        """Up to ``most`` updates for one message, counting this transmission."""
        entries = self._entries
        if not entries or most <= 0:
            return ()
        if len(entries) <= most:
            chosen = list(entries.items())
        else:
            chosen = sorted(entries.items(), key=lambda kv: kv[1][1])[:most]
        limit = self.limit(members)
        out: list[Update] = []
        for key, (update, sent) in chosen:
            out.append(update)
            if sent + 1 >= limit:
                del entries[key]
            else:
                entries[key] = (update, sent + 1)
        return tuple(out)

    def pending(self) -> list[tuple[Update, int]]:
        """Every queued update with its transmission count (for tests and status)."""
        return list(self._entries.values())
