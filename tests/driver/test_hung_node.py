"""A driver whose node hangs (its connections stay open, nothing comes back) goes on elsewhere.

The node process alone is stopped (SIGSTOP), not its process group: that is
exactly a hung node as its driver sees it (the kernel still takes the
driver's bytes and even completes new TCP connections, only the node's loop
answers nothing), and its workers run on, so a call in flight there may
finish with its result stuck on the stopped node. Stopping the whole group
would look the same to the driver. SIGCONT follows in any case, before the
nodes are killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_failover import (
    WHO,
    Background,
    Cluster,
    cluster_of,
    driver,
    served_by,
    wait_for,
)

import mpreg
from mpreg import Client, Command
from mpreg.driver.watchdog import SILENCE, TICK
from mpreg.host.cluster import DetachedNode

pytestmark = pytest.mark.cluster

# Seconds from the stop until a request is answered by another node: the watchdog
# gives the node up after 5-8 s (silence, a tick, the 2 s check); measured about 8 s.
HUNG_BOUND = 15.0


@contextlib.contextmanager
def stopped(member: DetachedNode) -> Iterator[float]:
    """SIGSTOP the node process (not its workers); yields when. SIGCONT on the way out."""
    os.kill(member.pid, signal.SIGSTOP)
    try:
        yield time.monotonic()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(member.pid, signal.SIGCONT)


def warnings_about(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


# --- the sync driver ------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_sync_requests_on_a_hung_node_are_answered_by_another(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mpreg.driver.link")
    with cluster_of(tmp_path, 2) as cluster, driver(cluster.nodes[0].address, cluster.token) as c:
        a, b = cluster.nodes
        for _ in range(5):
            assert mpreg.request(WHO)["w"]["label"] == "OwnsA"
        flag = tmp_path / "slow"
        # Alone, it takes the sync path's own connection: its reader blocks there.
        slow = Background(lambda: mpreg.request([Command("s", "slow_flagged", [str(flag), 2.0])]))
        wait_for(flag.exists, what="the slow call running")
        flag.unlink()
        with stopped(a) as stopped_at:
            # The sync connection is taken: this one goes the async way, to the hung node.
            answer = mpreg.request(WHO)["w"]  # no timeout
            took = time.monotonic() - stopped_at
            assert slow.result(timeout=60) == {"s": 2.0}
            slow_took = time.monotonic() - stopped_at
        print(f"answered by {b.address} {took:.1f} s after the stop; slow call {slow_took:.1f} s")
        assert took < HUNG_BOUND
        assert served_by(answer, b)
        assert flag.exists()  # the call in flight ran again, on B
        assert c.address == b.address
        assert len(warnings_about(caplog, f"node {a.address} did not answer for")) == 1
        assert f"lost node {a.address}; reconnected to {b.address}" in warnings_about(caplog, "")


@pytest.mark.timeout(120)
def test_an_idle_driver_notices_its_hung_node_only_when_it_asks(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mpreg.driver.link")
    with cluster_of(tmp_path, 2) as cluster, driver(cluster.nodes[0].address, cluster.token) as c:
        a, b = cluster.nodes
        assert mpreg.request(WHO)["w"]["label"] == "OwnsA"
        probes, generation = c.link.probes, c.generation
        with stopped(a):
            # An idle spell longer than the watchdog's silence, with nothing asked.
            time.sleep(SILENCE + 2 * TICK)  # ok-sleep: checks that nothing happens meanwhile
            assert c.link.probes == probes  # an idle driver sends nothing
            assert c.generation == generation and c.address == a.address and c.connected
            assert not warnings_about(caplog, "did not answer")
            started = time.monotonic()
            answer = mpreg.request(WHO)["w"]  # on the sync path's connection, no timeout
            took = time.monotonic() - started
        print(f"answered by {b.address} {took:.1f} s after the request")
        assert took < HUNG_BOUND
        assert served_by(answer, b) and c.address == b.address
        assert c.link.probes > probes  # noticed by the watchdog, not by a closed socket


@pytest.mark.timeout(120)
def test_a_long_call_on_a_healthy_node_is_not_taken_for_a_hang(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mpreg.driver.link")
    with cluster_of(tmp_path, 2) as cluster, driver(cluster.nodes[0].address, cluster.token) as c:
        a, _ = cluster.nodes
        generation = c.generation
        future = mpreg.submit("slow", 8.0)  # the async client's connection, silent 8 s
        answer = mpreg.request([Command("s", "slow", [8.0])])  # the sync one, silent 8 s
        assert answer["s"]["end"] - answer["s"]["start"] >= 8.0
        assert future.result(timeout=30)["end"] - future.result()["start"] >= 8.0
        assert c.link.probes >= 2  # watched all along, and every probe was answered
        assert c.address == a.address and c.generation == generation
        assert not warnings_about(caplog, "")


@pytest.mark.timeout(120)
def test_a_node_that_stopped_reading_from_a_busy_client_is_not_taken_for_a_hang(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Arguments past the node's bound for one client (16 MiB) make it stop reading
    # from that client until the call ends: the probe waits unread behind it, and
    # for 8 s nothing comes back. The node still takes a new connection, so it stays.
    caplog.set_level(logging.WARNING, logger="mpreg.driver.link")
    with cluster_of(tmp_path, 1) as cluster, driver(cluster.nodes[0].address, cluster.token) as c:
        generation = c.generation
        big = bytes(17 * 1024 * 1024)
        future = mpreg.submit("slow", 8.0, big)
        assert future.result(timeout=60)["value"] == big
        assert mpreg.request([Command("a", "add", [1, 2])]) == {"a": 3}
        assert c.link.probes >= 1
        assert c.generation == generation
        assert not warnings_about(caplog, "")


# --- the async client -----------------------------------------------------------------


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_of(tmp_path, 2) as cluster:
        yield cluster


@pytest.mark.timeout(120)
async def test_the_async_client_goes_on_from_a_hung_node(
    two_nodes: Cluster, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mpreg.driver.link")
    a, b = two_nodes.nodes
    async with Client(a.address, token=two_nodes.token, reconnect_timeout=10) as client:
        assert (await client.request(WHO, timeout=10))["w"]["label"] == "OwnsA"
        flag = tmp_path / "slow"
        slow = client.submit("slow_flagged", str(flag), 2.0)
        async with asyncio.timeout(20):
            while not flag.exists():  # noqa: ASYNC110 - polling a file the worker writes
                await asyncio.sleep(0.01)  # ok-sleep: polling, bounded by the timeout
        flag.unlink()
        with stopped(a) as stopped_at:
            answer = await client.request(WHO)  # no timeout
            took = time.monotonic() - stopped_at
            assert await slow == 2.0
        print(f"answered by {b.address} {took:.1f} s after the stop")
        assert took < HUNG_BOUND
        assert served_by(answer["w"], b)
        assert flag.exists()  # the future in flight ran again, on B
        assert client.address == b.address and repr(client).endswith(f"{b.address} open>")
        assert len(warnings_about(caplog, f"node {a.address} did not answer for")) == 1
