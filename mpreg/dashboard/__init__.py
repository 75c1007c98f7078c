"""``mpreg status`` and ``mpreg top``: cluster snapshots, and how they are drawn.

Collecting and drawing are separate: :mod:`.snapshot` builds frozen
snapshots without I/O, :mod:`.draw` turns them into rich renderables (tested
at fixed console widths), and :mod:`.live` is the only part that talks to
the cluster.
"""

from mpreg.dashboard.draw import fmt_bytes, fmt_ms, fmt_rate, render_status, render_top
from mpreg.dashboard.live import Collector, fetch_status, run_top
from mpreg.dashboard.snapshot import EndpointRow, NodeRow, Snapshot, build_snapshot

__all__ = [
    "Collector",
    "EndpointRow",
    "NodeRow",
    "Snapshot",
    "build_snapshot",
    "fetch_status",
    "fmt_bytes",
    "fmt_ms",
    "fmt_rate",
    "render_status",
    "render_top",
    "run_top",
]
