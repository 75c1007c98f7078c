"""``mpreg call --list`` against two real nodes (tests/extras_support.py)."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator

import pytest
from cli_support import command
from extras_support import TwoNodes, two_nodes

from mpreg import Client
from mpreg.driver.discovery import functions_of

pytestmark = pytest.mark.cluster


@pytest.fixture
def cluster() -> Iterator[TwoNodes]:
    yield from two_nodes()


def _both_serving(cluster: TwoNodes) -> None:
    async def nodes() -> set[str]:
        async with Client(cluster.address, token=cluster.token) as client:
            status = await client.status(timeout=10)
        return {n for f in functions_of(status) if f.name == "step" for n in f.nodes}

    deadline = time.monotonic() + 20
    while cluster.run(nodes()) != {"a", "b"}:
        assert time.monotonic() < deadline, "node b's worker never showed up"
        time.sleep(0.05)  # ok-sleep: polling, bounded by a deadline


def _mpreg(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPREG_")}
    env["COLUMNS"] = "200"
    return subprocess.run([*command(), *args], env=env, capture_output=True, text=True, timeout=60)


def test_call_list_prints_functions_datasets_replicas_and_nodes(cluster: TwoNodes) -> None:
    _both_serving(cluster)
    proc = _mpreg("call", "--list", "--address", cluster.address, "--token", cluster.token)
    assert proc.returncode == 0, proc.stderr
    lines = [" ".join(line.replace("│", " ").split()) for line in proc.stdout.splitlines()]
    assert "step alpha 1 a" in lines
    assert "step beta 1 b" in lines
    assert "options alpha 1 a" in lines


def test_call_without_a_function_or_list_is_a_usage_error(cluster: TwoNodes) -> None:
    proc = _mpreg("call", "--address", cluster.address, "--token", cluster.token)
    assert proc.returncode == 2
    assert "--list" in proc.stderr
