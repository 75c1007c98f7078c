"""``mpreg start --metrics-port``: the node's figures in the Prometheus text format.

A custom collector reads the node's own status snapshot
(:meth:`~mpreg.node.stats.NodeStatus.local`) when Prometheus scrapes, on the
node's event loop: the scrape costs one snapshot, and a call costs nothing
more than the node's own counters. Each node serves its own figures (scrape
every node; the ``node`` label tells them apart), so no figure is counted
twice. ``prometheus_client`` serves HTTP from a thread of its own.

With ``authorized`` (``mpreg start --metrics-auth``) a scrape must send
``Authorization: Bearer <read-only credential>`` (``mpreg token show
--read-only``; the previous one too during a rotation's grace), else 401. The
cluster token itself is refused there: plain HTTP would carry it in the clear,
and the read-only credential grants everything metrics need.
"""

from __future__ import annotations

import asyncio
import hmac
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app, start_http_server
from prometheus_client.core import (
    CollectorRegistry,
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.exposition import ThreadingWSGIServer
from prometheus_client.registry import Collector

from mpreg.membership import MemberState
from mpreg.node.metrics import BOUNDS_MS
from mpreg.node.node import Node
from mpreg.protocol.credentials import read_only_credential
from mpreg.protocol.messages import EndpointStats, NodeStats

SNAPSHOT_TIMEOUT = 5.0  # a scrape waits this long for the node's loop
# Histogram bounds exposed: every 4th bucket of the node's (a doubling each), 0.01 ms to ~82 s.
EXPOSED = tuple(range(3, len(BOUNDS_MS), 4))
ENDPOINT_LABELS = ("node", "actor", "endpoint", "kind", "dataset", "function")


def endpoint_labels(node: str, ep: EndpointStats) -> list[str]:
    """Label values of an endpoint's series; its datasets and functions joined by ","."""
    return [node, ep.label, ep.endpoint_id, ep.kind, ",".join(ep.datasets), ",".join(ep.functions)]


def histogram_buckets(ep: EndpointStats) -> list[tuple[str, float]]:
    """Cumulative (le, count) pairs in seconds from the endpoint's per-bucket counts."""
    counts = ep.latency_buckets or (0,) * (len(BOUNDS_MS) + 1)
    buckets: list[tuple[str, float]] = []
    seen = 0
    start = 0
    for i in EXPOSED:
        seen += sum(counts[start : i + 1])
        start = i + 1
        buckets.append((repr(BOUNDS_MS[i] / 1e3), float(seen)))
    buckets.append(("+Inf", float(sum(counts))))
    return buckets


def families(stats: NodeStats) -> Iterator[Metric]:
    """The metric families of one node's snapshot."""
    node = stats.node.name or stats.node.node_id
    labels = ENDPOINT_LABELS

    def counter(name: str, doc: str) -> CounterMetricFamily:
        return CounterMetricFamily(name, doc, labels=labels)

    def gauge(name: str, doc: str, names: Iterable[str] = labels) -> GaugeMetricFamily:
        return GaugeMetricFamily(name, doc, labels=list(names))

    calls = counter("mpreg_calls", "Calls answered by the process (errors included).")
    errors = counter("mpreg_call_errors", "Calls that ended in an error.")
    lane_calls = counter("mpreg_lane_calls", "Of mpreg_calls, those sent straight to the process.")
    lane_busy = counter("mpreg_lane_busy_seconds", "Seconds lane calls took in the process.")
    bytes_in = counter("mpreg_call_bytes_in", "Argument bytes sent to the process.")
    bytes_out = counter("mpreg_call_bytes_out", "Result bytes the process sent back.")
    restarts = counter("mpreg_restarts", "Times the process was restarted.")
    cpu = counter("mpreg_process_cpu_seconds", "User+system CPU of the process.")
    rss = gauge("mpreg_process_resident_memory_bytes", "Resident memory of the process.")
    in_flight = gauge("mpreg_calls_in_flight", "Calls sent to the process, not yet answered.")
    queued = gauge("mpreg_calls_queued", "Calls waiting on the node that the process could take.")
    up = gauge("mpreg_process_up", "1 while the process serves, 0 otherwise.", [*labels, "state"])
    recent = gauge(
        "mpreg_call_latency_recent_seconds",
        "Latency quantiles over the last minute (absent without calls).",
        [*labels, "quantile"],
    )
    latency = HistogramMetricFamily(
        "mpreg_call_latency_seconds", "Call latency seen by the node.", labels=labels
    )
    for ep in stats.endpoints:
        values = endpoint_labels(node, ep)
        calls.add_metric(values, ep.calls)
        errors.add_metric(values, ep.errors)
        lane_calls.add_metric(values, ep.lane_calls)
        lane_busy.add_metric(values, ep.lane_busy_seconds)
        bytes_in.add_metric(values, ep.bytes_in)
        bytes_out.add_metric(values, ep.bytes_out)
        restarts.add_metric(values, ep.restarts)
        in_flight.add_metric(values, ep.in_flight)
        queued.add_metric(values, ep.queued)
        up.add_metric([*values, ep.state], 1.0 if ep.state == "running" else 0.0)
        if ep.cpu_seconds is not None:
            cpu.add_metric(values, ep.cpu_seconds)
        if ep.rss_bytes:
            rss.add_metric(values, ep.rss_bytes)
        if ep.window_calls:
            for q, ms in (("0.5", ep.p50_ms), ("0.9", ep.p90_ms), ("0.99", ep.p99_ms)):
                recent.add_metric([*values, q], ms / 1e3)
        latency.add_metric(values, histogram_buckets(ep), ep.latency_sum_ms / 1e3)
    yield from (calls, errors, lane_calls, lane_busy, bytes_in, bytes_out, restarts, cpu, rss)
    yield from (in_flight, queued, up)
    yield from (recent, latency)
    yield from node_families(node, stats)


def node_families(node: str, stats: NodeStats) -> Iterator[Metric]:
    """The node process's own figures and the members it sees."""
    queued = GaugeMetricFamily(
        "mpreg_node_calls_queued", "Calls waiting on the node for a free slot.", labels=["node"]
    )
    queued.add_metric([node], stats.queued)
    yield queued
    rss = GaugeMetricFamily(
        "mpreg_node_resident_memory_bytes", "Resident memory of the node process.", labels=["node"]
    )
    rss.add_metric([node], stats.rss_bytes)
    yield rss
    if stats.cpu_seconds is not None:
        cpu = CounterMetricFamily(
            "mpreg_node_cpu_seconds", "User+system CPU of the node process.", labels=["node"]
        )
        cpu.add_metric([node], stats.cpu_seconds)
        yield cpu
    members = GaugeMetricFamily(
        "mpreg_member_state",
        "1 for each member's SWIM state as this node sees it, 0 for the others.",
        labels=["node", "member", "state"],
    )
    for member, state in stats.members:
        for each in MemberState:
            members.add_metric([node, member, each.value], 1.0 if each.value == state else 0.0)
    yield members


class NodeCollector(Collector):
    """Reads the node's snapshot on its own loop at scrape time (called from the HTTP thread)."""

    def __init__(self, node: Node, loop: asyncio.AbstractEventLoop) -> None:
        self._node = node
        self._loop = loop

    def __repr__(self) -> str:
        return f"<NodeCollector {self._node.node_id}>"

    def collect(self) -> Iterator[Metric]:
        async def snapshot() -> NodeStats:
            return self._node.status.local()  # on the loop: its dicts do not move under us

        future = asyncio.run_coroutine_threadsafe(snapshot(), self._loop)
        yield from families(future.result(SNAPSHOT_TIMEOUT))


class Exporter:
    """The HTTP server a node's metrics are scraped from; ``close()`` stops it."""

    def __init__(self, server: WSGIServer, thread: threading.Thread, host: str) -> None:
        self._server = server
        self._thread = thread
        self.address = f"{host}:{server.server_port}"  # the port it bound (port 0: a free one)

    def __repr__(self) -> str:
        return f"<Exporter http://{self.address}/metrics>"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(SNAPSHOT_TIMEOUT)


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # a scrape every few seconds is not news


Wsgi = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def bearer_only(app: Wsgi, credentials: Callable[[], Iterable[str]]) -> Wsgi:
    """``app`` for requests bearing one of ``credentials()`` as a Bearer token; else 401."""

    def check(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        scheme, _, given = str(environ.get("HTTP_AUTHORIZATION", "")).partition(" ")
        matches = sum(hmac.compare_digest(given.encode(), c.encode()) for c in credentials())
        if scheme.lower() == "bearer" and matches:
            return app(environ, start_response)
        start_response(
            "401 Unauthorized",
            [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="mpreg"')],
        )
        return [b"send Authorization: Bearer <the output of `mpreg token show --read-only`>\n"]

    return check


def _serve(app: Wsgi, port: int, host: str) -> tuple[WSGIServer, threading.Thread]:
    server = make_server(host, port, app, ThreadingWSGIServer, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, name="mpreg-metrics", daemon=True)
    thread.start()
    return server, thread


def start_exporter(node: Node, port: int, host: str, *, authorized: bool = False) -> Exporter:
    """Serve ``node``'s metrics on ``host:port`` (0: a free port).

    ``authorized``: only to scrapes bearing the cluster's read-only credential.
    Raises OSError (without an errno: not the node's address) if it cannot
    listen there. Call it from the node's event loop.
    """
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node, asyncio.get_running_loop()))

    def credentials() -> list[str]:
        return [read_only_credential(t) for t in node.tokens.ring.tokens(time.monotonic())]

    try:
        if authorized:
            server, thread = _serve(bearer_only(make_wsgi_app(registry), credentials), port, host)
        else:
            server, thread = start_http_server(port, addr=host, registry=registry)
    except OSError as exc:
        # No errno: the node's own port is fine, and its start failure must not say otherwise.
        raise OSError(f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}") from None
    return Exporter(server, thread, host)
