"""Random orders over member ids without copying the member list.

SWIM probes members round-robin over a shuffled list, reshuffled each round.
Copying and shuffling a 10,000-id list per member per round is what a
simulator of 10,000 members cannot afford, so :class:`ProbeOrder` shuffles
lazily (Fisher-Yates, one swap per step, remembered in a dict): a round costs
memory and time in proportion to the probes made, not to the cluster size.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence


class ProbeOrder:
    """One round: a uniformly random order over ``first + second`` (two sequences, unjoined)."""

    __slots__ = ("_first", "_n", "_next", "_rng", "_second", "_split", "_swaps")

    def __init__(self, first: Sequence[str], second: Sequence[str], rng: random.Random) -> None:
        self._first = first
        self._second = second
        self._split = len(first)
        self._n = self._split + len(second)
        self._next = 0
        self._swaps: dict[int, int] = {}
        self._rng = rng

    def _at(self, index: int) -> str:
        return self._first[index] if index < self._split else self._second[index - self._split]

    def next(self) -> str | None:
        """The next id of the round; None once the round is over."""
        k = self._next
        if k >= self._n:
            return None
        j = k + self._rng.randrange(self._n - k)
        swaps = self._swaps
        picked = swaps.get(j, j)
        swaps[j] = swaps.pop(k, k)
        self._next = k + 1
        return self._at(picked)


def sample(
    first: Sequence[str],
    second: Sequence[str],
    count: int,
    accept: Callable[[str], bool],
    rng: random.Random,
) -> list[str]:
    """Up to ``count`` distinct ids of ``first + second`` that ``accept``, chosen at random.

    Small tables are filtered whole, so a qualifying id is always found; large
    ones are sampled with a bounded number of tries (a sample of a few helpers
    from thousands of members must not cost a scan of them all).
    """
    n = len(first) + len(second)
    if count <= 0 or n == 0:
        return []
    if n <= 64:
        pool = [i for i in (*first, *second) if accept(i)]
        return rng.sample(pool, min(count, len(pool)))
    split = len(first)
    chosen: list[str] = []
    for _ in range(8 * count):
        index = rng.randrange(n)
        node_id = first[index] if index < split else second[index - split]
        if node_id not in chosen and accept(node_id):
            chosen.append(node_id)
            if len(chosen) == count:
                break
    return chosen
