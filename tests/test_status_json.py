"""``status --json``: null where there is no figure, numbers where there is one."""

from __future__ import annotations

import json

from mpreg.protocol.messages import EndpointStats, NodeInfo, NodeStats
from mpreg.status import ClusterStatus


def endpoint(*, window_calls: int, pid: int = 1234, calls: int = 0) -> EndpointStats:
    return EndpointStats(
        endpoint_id="head/Cairo-1",
        node_id="head",
        kind="actor",
        label="Cairo",
        functions=("f",),
        datasets=("d",),
        pid=pid,
        state="running" if pid else "starting",
        in_flight=0,
        calls=calls,
        errors=0,
        restarts=0,
        rss_bytes=4096 if pid else 0,
        p50_ms=1.5 if window_calls else 0.0,
        p99_ms=3.0 if window_calls else 0.0,
        window_calls=window_calls,
        p90_ms=2.0 if window_calls else 0.0,
        cpu_seconds=0.25 if pid else None,
        latency_buckets=(0, window_calls),
    )


def as_json(*nodes: NodeStats) -> dict:
    return json.loads(json.dumps(ClusterStatus(nodes).to_dict()))


def node(state: str = "alive", *endpoints: EndpointStats) -> NodeStats:
    return NodeStats(
        node=NodeInfo("head", "head", "127.0.0.1:7773"),
        state=state,
        pid=4242 if state == "alive" else 0,
        rss_bytes=8192 if state == "alive" else 0,
        calls=sum(ep.calls for ep in endpoints),
        in_flight=0,
        endpoints=endpoints,
        cpu_seconds=1.0 if state == "alive" else None,
        members=(("head", "alive"), ("gone", "dead")),
    )


def test_an_actor_without_calls_has_null_latencies_not_zero() -> None:
    (ep,) = as_json(node("alive", endpoint(window_calls=0)))["nodes"][0]["endpoints"]
    assert ep["p50_ms"] is None and ep["p90_ms"] is None and ep["p99_ms"] is None
    assert ep["calls"] == 0 and ep["errors"] == 0  # counts are figures: zero is known
    assert "latency_buckets" not in ep


def test_an_actor_with_calls_has_its_latencies() -> None:
    (ep,) = as_json(node("alive", endpoint(window_calls=5, calls=5)))["nodes"][0]["endpoints"]
    assert (ep["p50_ms"], ep["p90_ms"], ep["p99_ms"]) == (1.5, 2.0, 3.0)
    assert ep["calls"] == 5 and ep["rss_bytes"] == 4096 and ep["cpu_seconds"] == 0.25


def test_a_process_not_started_has_no_pid_memory_or_cpu() -> None:
    (ep,) = as_json(node("alive", endpoint(window_calls=0, pid=0)))["nodes"][0]["endpoints"]
    assert ep["pid"] is None and ep["rss_bytes"] is None and ep["cpu_seconds"] is None


def test_a_node_that_did_not_answer_has_null_figures() -> None:
    (n,) = as_json(node("unreachable"))["nodes"]
    for key in ("pid", "rss_bytes", "calls", "in_flight", "queued", "cpu_seconds"):
        assert n[key] is None, key
    assert n["state"] == "unreachable"


def test_members_and_their_states_are_listed() -> None:
    (n,) = as_json(node("alive"))["nodes"]
    assert n["members"] == [{"name": "head", "state": "alive"}, {"name": "gone", "state": "dead"}]
    assert n["pid"] == 4242 and n["calls"] == 0 and n["queued"] == 0
