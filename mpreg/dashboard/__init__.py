"""``mpreg status`` and ``mpreg top``: cluster snapshots, and how they are drawn.

Collecting and drawing are separate: :mod:`.snapshot` builds frozen
snapshots without I/O, :mod:`.draw` turns them into rich renderables (tested
at fixed console widths, fitted by :mod:`.fit`), :mod:`.view` holds what the
viewer chose (sort, filter) and the keys that change it, :mod:`.keys` reads
them from the terminal, and :mod:`.live` is the only part that talks to the
cluster.
"""

from mpreg.dashboard.draw import (
    fmt_bytes,
    fmt_ms,
    fmt_rate,
    render_status,
    render_top,
    sparkline,
)
from mpreg.dashboard.live import Collector, fetch_status, run_top
from mpreg.dashboard.snapshot import EndpointRow, NodeRow, Snapshot, build_snapshot
from mpreg.dashboard.view import History, ViewState, press, visible

__all__ = [
    "Collector",
    "EndpointRow",
    "History",
    "NodeRow",
    "Snapshot",
    "ViewState",
    "build_snapshot",
    "fetch_status",
    "fmt_bytes",
    "fmt_ms",
    "fmt_rate",
    "press",
    "render_status",
    "render_top",
    "run_top",
    "sparkline",
    "visible",
]
