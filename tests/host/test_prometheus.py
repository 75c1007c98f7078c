"""The same call counts in ``status --json``, ``top --once`` and the Prometheus text."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import urllib.request

import pytest
from cli_support import command, free_port
from metrics_support import Ledger
from prometheus_client.parser import text_string_to_metric_families

from mpreg import Client, RemoteError
from mpreg.errors import NodeStartError
from mpreg.testing import LocalCluster, node, run_cluster

pytestmark = pytest.mark.cluster

CALLS = 1000
FAILING = 37


def mpreg_cli(cluster: LocalCluster, *args: str) -> str:
    env = {**os.environ, "MPREG_ADDRESS": cluster.address, "MPREG_TOKEN": cluster.token}
    env["COLUMNS"] = "200"  # wide enough for every column of top's frame
    done = subprocess.run(
        [*command(), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Sample name -> (labels, value) of the node's /metrics, parsed by prometheus_client."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def ledger(samples: list[tuple[dict[str, str], float]]) -> list[float]:
    return [value for labels, value in samples if labels.get("actor") == "Ledger"]


async def count_calls(cluster: LocalCluster) -> None:
    """Exactly CALLS calls to the Ledger actor, the first FAILING of which raise."""
    async with Client(cluster.address, token=cluster.token) as client:
        futures = [client.submit("step", i, i < FAILING, datasets=["ledger"]) for i in range(CALLS)]
        results = await asyncio.gather(*futures, return_exceptions=True)
    assert sum(isinstance(r, RemoteError) for r in results) == FAILING


async def test_thousand_calls_37_raising_in_status_json_and_prometheus() -> None:
    port = free_port()
    config = node("counted", workers=0, actors=(Ledger,), metrics_port=port)
    async with run_cluster(config) as cluster:
        await count_calls(cluster)

        status = json.loads(await asyncio.to_thread(mpreg_cli, cluster, "status", "--json"))
        (ep,) = [e for n in status["nodes"] for e in n["endpoints"] if e["label"] == "Ledger"]
        assert (ep["calls"], ep["errors"]) == (CALLS, FAILING)
        assert ep["window_calls"] == CALLS and 0 < ep["p50_ms"] <= ep["p90_ms"] <= ep["p99_ms"]
        assert ep["bytes_in"] > 0 and ep["bytes_out"] > 0 and ep["cpu_seconds"] > 0

        samples = await asyncio.to_thread(scrape, port)
        assert ledger(samples["mpreg_calls_total"]) == [CALLS]
        assert ledger(samples["mpreg_call_errors_total"]) == [FAILING]
        assert ledger(samples["mpreg_call_latency_seconds_count"]) == [CALLS]
        (labels,) = [lab for lab, _ in samples["mpreg_calls_total"] if lab["actor"] == "Ledger"]
        assert (labels["node"], labels["dataset"], labels["function"]) == (
            "counted",
            "ledger",
            "step",
        )
        states = {lab["state"]: v for lab, v in samples["mpreg_member_state"]}
        assert states["alive"] == 1.0 and states["dead"] == 0.0


async def test_thousand_calls_37_raising_in_top_once() -> None:
    async with run_cluster(node("counted", workers=0, actors=(Ledger,))) as cluster:
        await count_calls(cluster)
        frame = await asyncio.to_thread(mpreg_cli, cluster, "top", "--once")
    lines = frame.splitlines()
    (row,) = [line for line in lines if "Ledger" in line]
    header = next(line for line in reversed(lines[: lines.index(row)]) if "errors" in line)
    columns = [cell.strip() for cell in re.split("[│┃|]", header)]
    cells = [cell.strip() for cell in re.split("[│┃|]", row)]
    assert "calls" in columns, f"top --once shows no calls column: {header}"
    assert cells[columns.index("calls")].replace(",", "") == str(CALLS), row
    assert cells[columns.index("errors")] == str(FAILING), row


async def test_a_taken_metrics_port_fails_the_start_and_says_which_port() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(NodeStartError, match=f"cannot serve metrics on 127.0.0.1:{port}"):
            async with run_cluster(node("taken", workers=0, metrics_port=port)):
                pass
