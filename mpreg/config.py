"""Frozen configuration. The CLI, config files and ``mpreg.init()`` all build these.

A config is plain data: names of what to serve, never imported objects, so
building or reading one runs no user code. The node imports the names when
it starts (:func:`mpreg.actors.loader.load_served`).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7773
# Unfinished tasks one client may have on its node before the node stops
# reading its requests (backpressure); ~2.5 KiB each on the node.
DEFAULT_MAX_QUEUED_PER_CLIENT = 2048
# ... and the bytes of their arguments: a few large payloads fill a node's
# memory long before thousands of small calls do.
DEFAULT_MAX_QUEUED_BYTES_PER_CLIENT = 16 * 1024 * 1024
# The largest frame an authenticated peer may send (a 100 MB array fits; bigger
# data goes through put/streaming), and how long a half-sent frame may stall.
DEFAULT_MAX_FRAME_BYTES = 128 * 1024 * 1024
DEFAULT_FRAME_STALL_TIMEOUT = 30.0
# Calls one peer node may have running here at once (its dispatch window keeps a
# well-behaved peer at 128 per endpoint); past it, what it forwards is refused.
DEFAULT_MAX_FORWARDED_PER_LINK = 16_384


def frame_bytes(mib: float) -> int:
    """``--max-frame-mb`` / ``max_frame_mb`` in bytes (at least 1 MiB: room for any message)."""
    return max(1 << 20, int(mib * (1 << 20)))


def short_hostname() -> str:
    """This host's name up to its first dot (``node7`` for ``node7.example.org``)."""
    return socket.gethostname().partition(".")[0] or "node"


def default_node_name(port: int) -> str:
    """The name of a node started without one: ``<short host name>-<port it bound>``.

    Unique across a cluster: one host never has two nodes on the same port.
    """
    return f"{short_hostname()}-{port}"


def default_workers() -> int:
    """Plain-function worker processes per node: one per core, at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def eager_workers_default(default: bool) -> bool:
    """``$MPREG_EAGER_WORKERS`` (1/true/yes or 0/false/no) if set, else ``default``.

    ``mpreg start`` defaults to eager, the embedded cluster to lazy
    (docs/guide.md, "Function workers start on first use"). Raises ValueError
    for another value.
    """
    raw = os.environ.get("MPREG_EAGER_WORKERS", "").strip().lower()
    if not raw:
        return default
    if raw in ("1", "true", "yes", "on"):
        return True
    if raw in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"MPREG_EAGER_WORKERS must be 1 or 0, got {raw!r}")


DEFAULT_MAX_STORE_BYTES = 2 * 1024**3
LANES_ENV = "MPREG_LANES"


def lanes_default() -> bool:
    """Direct lanes are on unless ``$MPREG_LANES`` is ``0``, ``false``, ``no`` or ``off``."""
    return os.environ.get(LANES_ENV, "").strip().lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Everything one node needs to start.

    ``resources`` are the datasets this node's plain-function workers
    advertise (none: the node is a BALANCER unless it hosts actors).
    ``modules`` (dotted names or ``.py`` paths) are imported by the node; the
    ``@mpreg.function``s and ``@mpreg.actor``s defined there are served.
    ``actors`` and ``functions`` name single ones as ``module:Name``.
    ``by_value`` carries functions and actor classes handed over as objects
    (``mpreg.init(actors=[...])``, ``mpreg.testing.node``): the parts of a
    codec blob, made by :func:`mpreg.actors.loader.pack_served`. ``peers``
    are seeds: the node joins through the first that answers
    (:mod:`mpreg.node.seeds`); with ``join_optional`` none answering is not
    an error, and the node starts a new cluster instead. An empty ``name``
    becomes :func:`default_node_name` of the port the node binds.
    """

    name: str = ""
    host: str = DEFAULT_HOST
    port: int = 0
    token: str = ""
    resources: tuple[str, ...] = ()
    peers: tuple[str, ...] = ()
    modules: tuple[str, ...] = ()
    actors: tuple[str, ...] = ()
    functions: tuple[str, ...] = ()
    by_value: tuple[bytes, ...] = field(default=(), compare=False, repr=False)
    workers: int = field(default_factory=default_workers)
    # Start the function workers with the node (True), or each on its first call
    # (False: their idle memory saved, the first call waits for the start; docs/guide.md).
    eager_workers: bool = True
    advertise_host: str = ""  # the host peers and clients dial; defaults to ``host``
    join_optional: bool = False  # no seed answering starts a new cluster (a restarted head)
    max_queued_per_client: int = DEFAULT_MAX_QUEUED_PER_CLIENT
    max_queued_bytes_per_client: int = DEFAULT_MAX_QUEUED_BYTES_PER_CLIENT
    # Frames from any peer, authenticated or not, are cut past ``max_frame_bytes``
    # (clients and workers learn it in the handshake and refuse larger values
    # themselves), and a connection whose frame stops arriving for
    # ``frame_stall_timeout`` seconds is closed.
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES
    frame_stall_timeout: float = DEFAULT_FRAME_STALL_TIMEOUT
    max_forwarded_per_link: int = DEFAULT_MAX_FORWARDED_PER_LINK
    # Failure detection (SWIM, mpreg.membership): each member probes one other
    # every ``probe_interval`` s; no answer within ``probe_timeout`` (directly
    # or through others) makes it suspect, and ``suspect_timeout`` s later dead
    # (the defaults of mpreg.membership.SwimConfig; benchmarks/README.md has why).
    probe_interval: float = 0.4
    probe_timeout: float = 0.2
    suspect_timeout: float = 2.5
    # Per-call metrics (calls, errors, latency, bytes per endpoint); off only to
    # measure their cost (benchmarks/metrics_cost.py).
    metrics: bool = True
    # Serve the metrics in the Prometheus text format on this port (of ``host``); None: no.
    metrics_port: int | None = None
    # Bytes of values the node holds for its clients' futures and puts (mpreg.node.store);
    # a value that would cross it is refused with StoreFull.
    max_store_bytes: int = DEFAULT_MAX_STORE_BYTES
    # TLS (mpreg.transport.tls): this node's certificate and key, and the cluster CA that
    # signed every member's and client's. All three, or none (clear text).
    tls_cert: str = ""
    tls_key: str = ""
    tls_ca: str = ""
    # Scrapes must send ``Authorization: Bearer <read-only credential>`` (docs/metrics.md).
    metrics_auth: bool = False
    # Direct lanes (mpreg.protocol.lanes): each worker listens on a port of ``host`` where
    # clients the node admitted call it straight. Off: calls always go through the node.
    lanes: bool = field(default_factory=lanes_default)


def node_label(config: NodeConfig) -> str:
    """What to call ``config``'s node before it has bound its port (in errors, log names)."""
    if config.name:
        return config.name
    return default_node_name(config.port) if config.port else short_hostname()
