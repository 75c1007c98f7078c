"""A node snapshot in the Prometheus text format, read back with prometheus_client's parser."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from mpreg.host.prometheus import EXPOSED, families
from mpreg.node.metrics import BOUNDS_MS, LatencyWindow
from mpreg.protocol.messages import EndpointStats, NodeInfo, NodeStats


def snapshot() -> NodeStats:
    window = LatencyWindow(now=0.0)
    for ms in (0.5, 0.5, 2.0, 900.0):
        window.add(ms, now=0.0)
    busy = EndpointStats(
        endpoint_id="n1/Model-1",
        node_id="n1",
        kind="actor",
        label="Model",
        functions=("predict", "train"),
        datasets=("a", "b"),
        pid=100,
        state="running",
        in_flight=2,
        calls=4,
        errors=1,
        restarts=3,
        rss_bytes=1 << 20,
        p50_ms=0.5,
        p99_ms=900.0,
        window_calls=4,
        p90_ms=900.0,
        bytes_in=10,
        bytes_out=20,
        cpu_seconds=1.5,
        latency_buckets=tuple(window.lifetime()),
        latency_sum_ms=window.sum_ms,
        queued=5,
        lane_calls=2,
        lane_busy_seconds=0.25,
    )
    idle = EndpointStats(
        "n1/fn-1", "n1", "function", "fn", ("g",), (), 0, "starting", 0, 0, 0, 0, 0
    )
    return NodeStats(
        node=NodeInfo("n1", "alpha", "127.0.0.1:1"),
        state="alive",
        pid=1,
        rss_bytes=2048,
        calls=4,
        in_flight=2,
        endpoints=(busy, idle),
        queued=7,
        cpu_seconds=3.0,
        members=(("alpha", "alive"), ("beta", "suspect")),
    )


class _Fixed(Collector):
    def collect(self) -> list[Metric]:
        return list(families(snapshot()))


def parsed() -> dict[str, dict[tuple[tuple[str, str], ...], float]]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Fixed())
    text = generate_latest(registry).decode()
    out: dict[str, dict[tuple[tuple[str, str], ...], float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out.setdefault(s.name, {})[tuple(sorted(s.labels.items()))] = s.value
    return out


def only(samples: dict[tuple[tuple[str, str], ...], float], **labels: str) -> float:
    (value,) = [v for key, v in samples.items() if set(labels.items()) <= set(key)]
    return value


def test_counters_carry_node_actor_dataset_and_function_labels() -> None:
    m = parsed()
    key = {"node": "alpha", "actor": "Model", "dataset": "a,b", "function": "predict,train"}
    assert only(m["mpreg_calls_total"], **key) == 4
    assert only(m["mpreg_call_errors_total"], **key) == 1
    assert only(m["mpreg_restarts_total"], **key) == 3
    assert only(m["mpreg_call_bytes_in_total"], **key) == 10
    assert only(m["mpreg_call_bytes_out_total"], **key) == 20
    assert only(m["mpreg_calls_in_flight"], **key) == 2
    assert only(m["mpreg_calls_queued"], **key) == 5
    assert only(m["mpreg_process_cpu_seconds_total"], **key) == 1.5
    assert only(m["mpreg_lane_calls_total"], **key) == 2  # of the 4 calls
    assert only(m["mpreg_lane_busy_seconds_total"], **key) == 0.25
    assert only(m["mpreg_node_calls_queued"], node="alpha") == 7


def test_the_histogram_is_cumulative_in_seconds_and_counts_every_call() -> None:
    buckets = {
        dict(key)["le"]: v
        for key, v in parsed()["mpreg_call_latency_seconds_bucket"].items()
        if dict(key)["actor"] == "Model"
    }
    assert buckets["+Inf"] == 4
    bounds = sorted((float(le), v) for le, v in buckets.items() if le != "+Inf")
    assert [v for _, v in bounds] == sorted(v for _, v in bounds)  # cumulative
    assert next(v for le, v in bounds if le >= 0.001) == 2  # the two 0.5 ms calls
    assert next(v for le, v in bounds if le >= 1.0) == 4
    assert bounds[-1][0] == BOUNDS_MS[EXPOSED[-1]] / 1e3


def test_no_recent_quantile_without_calls_and_members_by_state() -> None:
    m = parsed()
    recent = m["mpreg_call_latency_recent_seconds"]
    assert {dict(k)["actor"] for k in recent} == {"Model"}  # the idle worker has none
    assert only(recent, actor="Model", quantile="0.5") == 0.0005
    assert only(m["mpreg_member_state"], member="beta", state="suspect") == 1.0
    assert only(m["mpreg_member_state"], member="beta", state="alive") == 0.0
    assert only(m["mpreg_process_up"], actor="fn", state="starting") == 0.0
