"""What the ``mpreg top`` viewer chose: sort column, filter, help; and the keys that change it.

Pure: a key and a :class:`ViewState` in, the next state out, so every key is
tested without a terminal. :class:`History` keeps the recent calls/s for the
sparklines.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from mpreg.dashboard.snapshot import EndpointRow, Snapshot

ENTER = ("\r", "\n")
ESCAPE = "\x1b"
BACKSPACE = ("\x7f", "\b")

KEYS = (
    ("q", "quit"),
    ("s", "sort by the next column"),
    ("f", "filter actors by name or dataset (Enter applies, Esc clears)"),
    ("?", "show or hide these keys"),
)


def _name_key(e: EndpointRow) -> tuple[object, ...]:
    return (e.kind != "actor", e.label.lower(), e.node, e.replica, e.endpoint_id)


def _descending(
    value: Callable[[EndpointRow], float],
) -> Callable[[EndpointRow], tuple[object, ...]]:
    return lambda e: (-value(e), *_name_key(e))


# The sort columns ``s`` cycles through, in order: (title, key).
SORTS: tuple[tuple[str, Callable[[EndpointRow], tuple[object, ...]]], ...] = (
    ("name", _name_key),
    ("calls/s", _descending(lambda e: e.calls_per_s or 0.0)),
    ("p99", _descending(lambda e: e.p99_ms)),
    ("errors", _descending(lambda e: e.errors)),
    ("memory", _descending(lambda e: e.rss_bytes)),
    ("node", lambda e: (e.node, *_name_key(e))),
)


@dataclass(frozen=True, slots=True)
class ViewState:
    """The viewer's choices; ``prompt`` is the filter being typed (None when not typing)."""

    sort: int = 0
    filter: str = ""
    prompt: str | None = None
    help: bool = False
    quit: bool = False

    @property
    def sort_title(self) -> str:
        return SORTS[self.sort][0]


def press(state: ViewState, key: str) -> ViewState:
    """The state after ``key`` (one character, or a whole escape sequence)."""
    if state.prompt is not None:
        if key in ENTER:
            return replace(state, filter=state.prompt.strip(), prompt=None)
        if key == ESCAPE:
            return replace(state, filter="", prompt=None)
        if key in BACKSPACE:
            return replace(state, prompt=state.prompt[:-1])
        if key.isprintable() and len(key) == 1:
            return replace(state, prompt=state.prompt + key)
        return state  # an arrow key or other sequence: nothing to type
    if key in ("q", "Q"):
        return replace(state, quit=True)
    if key == "s":
        return replace(state, sort=(state.sort + 1) % len(SORTS))
    if key == "S":
        return replace(state, sort=(state.sort - 1) % len(SORTS))
    if key in ("f", "/"):
        return replace(state, prompt=state.filter, help=False)
    if key in ("?", "h"):
        return replace(state, help=not state.help)
    if key == ESCAPE:
        return replace(state, help=False)
    return state


def visible(endpoints: Sequence[EndpointRow], state: ViewState) -> list[EndpointRow]:
    """The rows the filter keeps, in the chosen order."""
    needle = (state.prompt if state.prompt is not None else state.filter).lower()
    rows = [
        e
        for e in endpoints
        if not needle or needle in e.label.lower() or any(needle in d.lower() for d in e.datasets)
    ]
    return sorted(rows, key=SORTS[state.sort][1])


@dataclass
class History:
    """The last ``size`` calls/s figures, cluster-wide and per node, for the sparklines."""

    size: int = 30
    total: deque[float] = field(default_factory=deque)
    nodes: dict[str, deque[float]] = field(default_factory=dict)

    def add(self, snapshot: Snapshot) -> None:
        """Record ``snapshot``'s rates; a failed sample (or one with no rates) adds nothing."""
        if snapshot.error or not any(n.calls_per_s is not None for n in snapshot.nodes):
            return
        self._push(self.total, sum(n.calls_per_s or 0.0 for n in snapshot.nodes))
        for node in snapshot.nodes:
            self._push(self.nodes.setdefault(node.node_id, deque()), node.calls_per_s or 0.0)

    def _push(self, values: deque[float], value: float) -> None:
        values.append(value)
        while len(values) > self.size:
            values.popleft()
