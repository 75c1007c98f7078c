"""A driver whose node dies goes on with another member of the cluster.

Nodes run detached, each in its own process group, so a test kills one as a
host dies: ``kill -9`` of the node and all its workers at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cluster_actors as ca
import pytest
from restart_support import children

import mpreg
from mpreg import Client, ClusterUnavailable, Command
from mpreg.driver import api
from mpreg.host.cluster import DetachedNode, start_detached
from mpreg.testing import node

pytestmark = pytest.mark.cluster

FUNCTIONS = (ca.slow, ca.slow_flagged, ca.add)
FAILOVER_BOUND = 5.0  # seconds from the kill until a request is answered by another node


@dataclass
class Cluster:
    token: str
    nodes: list[DetachedNode]

    def by_address(self, address: str) -> DetachedNode:
        return next(n for n in self.nodes if n.address == address)


def kill_host(member: DetachedNode) -> None:
    """kill -9 the node and its workers (its process group), as when its host dies."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(member.pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(member.pid, 0)


@contextlib.contextmanager
def cluster_of(tmp_path: Path, count: int) -> Iterator[Cluster]:
    """``count`` detached nodes joined to the first, each with a replica of actor OwnsA."""
    token = secrets.token_hex(16)
    nodes: list[DetachedNode] = []
    try:
        for i in range(count):
            config = node(
                f"n{i}",
                functions=FUNCTIONS,
                actors=(ca.OwnsA,),
                workers=2,
                token=token,
                peers=(nodes[0].address,) if nodes else (),
            )
            nodes.append(start_detached(config, log_path=tmp_path / f"n{i}.log"))
        yield Cluster(token, nodes)
    finally:
        for member in nodes:
            kill_host(member)


@contextlib.contextmanager
def driver(address: str, token: str, reconnect_timeout: float = 10.0) -> Iterator[Client]:
    """The sync facade connected to ``address``; yields its async client."""
    mpreg.init(address, token=token, reconnect_timeout=reconnect_timeout)
    try:
        runtime = api._runtime
        assert runtime is not None and runtime.client is not None
        yield runtime.client
    finally:
        mpreg.shutdown()


def wait_for(predicate: Callable[[], bool], timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what or predicate}"
        time.sleep(0.01)  # ok-sleep: polling, bounded by a deadline


def served_by(answer: dict[str, object], member: DetachedNode) -> bool:
    """True if the actor call that gave ``answer`` ran in one of ``member``'s processes."""
    return answer["pid"] in children(member.pid)


WHO = [Command("w", "who", [], ["a"])]


class Background:
    """A sync call run in its own thread; ``result()`` re-raises what it raised."""

    def __init__(self, fn: Callable[[], object]) -> None:
        self._fn = fn
        self._outcome: tuple[object, BaseException | None] = (None, None)
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._outcome = (self._fn(), None)
        except BaseException as exc:
            self._outcome = (None, exc)

    def result(self, timeout: float) -> object:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), f"{self._fn} still running after {timeout:g}s"
        value, error = self._outcome
        if error is not None:
            raise error
        return value


# --- the sync driver ------------------------------------------------------------------


@pytest.mark.timeout(120)
def test_sync_requests_go_on_with_another_node_when_theirs_is_killed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="mpreg.driver.link")
    with cluster_of(tmp_path, 2) as cluster, driver(cluster.nodes[0].address, cluster.token) as c:
        a, b = cluster.nodes
        assert set(c.members) == {a.address, b.address}  # learned from its node
        killed_at = 0.0
        outcomes: list[tuple[float, float, BaseException | None]] = []  # issued, done, error
        stop = threading.Event()

        def hammer() -> None:
            while not stop.is_set():
                issued = time.monotonic()
                try:
                    answer = mpreg.request(WHO, timeout=30)["w"]
                    assert isinstance(answer, dict) and answer["label"] == "OwnsA"
                    error = None
                except Exception as exc:
                    error = exc
                outcomes.append((issued, time.monotonic(), error))

        worker = threading.Thread(target=hammer, daemon=True)
        worker.start()
        wait_for(lambda: len(outcomes) >= 20, what="requests before the kill")
        killed_at = time.monotonic()
        kill_host(a)
        wait_for(lambda: sum(o[0] > killed_at for o in outcomes) >= 50, what="requests after")
        stop.set()
        worker.join(30)
        assert not worker.is_alive()

        failed = [o for o in outcomes if o[2] is not None]
        assert not failed, failed[:3]
        after = [o for o in outcomes if o[0] > killed_at]
        assert len(after) >= 50
        assert after[0][1] - killed_at < FAILOVER_BOUND  # the first issued after the kill
        assert c.address == b.address and b.address in repr(c)
        assert served_by(mpreg.request(WHO, timeout=10)["w"], b)
        lines = [r.getMessage() for r in caplog.records]
        assert f"lost node {a.address}; reconnected to {b.address}" in lines


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("sync_retries", "async_retries"), [(3, 0), (0, 3)], ids=["sync-repeats", "async-repeats"]
)
def test_a_request_in_flight_at_the_kill_is_resent_unless_it_must_not_repeat(
    tmp_path: Path, sync_retries: int, async_retries: int
) -> None:
    # The first request takes the sync path and holds its connection, so the
    # second, made meanwhile from another thread, goes through the async client.
    with cluster_of(tmp_path, 2) as cluster, driver(cluster.nodes[0].address, cluster.token) as c:
        a, b = cluster.nodes
        flags = [str(tmp_path / "first"), str(tmp_path / "second")]
        calls = []
        for flag, retries in zip(flags, (sync_retries, async_retries), strict=True):
            command = [Command("s", "slow_flagged", [flag, 1.0])]
            calls.append(
                Background(lambda c=command, r=retries: mpreg.request(c, timeout=60, retries=r))
            )
            wait_for(lambda f=flag: os.path.exists(f), what=f"{flag} running")
        kill_host(a)
        for call, retries in zip(calls, (sync_retries, async_retries), strict=True):
            if retries:
                assert call.result(timeout=60) == {"s": 1.0}
            else:
                with pytest.raises(ClusterUnavailable) as caught:
                    call.result(timeout=60)
                message = str(caught.value)
                assert f"lost node {a.address} while the request ran" in message
                assert "must not repeat (retries=0)" in message
        assert c.address == b.address
        assert served_by(mpreg.request(WHO, timeout=10)["w"], b)


@pytest.mark.timeout(120)
def test_pending_futures_are_resubmitted_to_the_new_node(tmp_path: Path) -> None:
    with cluster_of(tmp_path, 2) as cluster, driver(cluster.nodes[0].address, cluster.token):
        a, _ = cluster.nodes
        three = mpreg.submit("add", 1, 2)
        assert three.result(timeout=10) == 3
        flag, once_flag = str(tmp_path / "running"), str(tmp_path / "once")
        running = mpreg.submit("slow_flagged", flag, 1.5)
        on_finished = mpreg.submit("slow", 1.5, three)  # its argument is a finished future
        on_running = mpreg.submit("slow", 0.1, running)  # waits on the node for `running`
        once = mpreg.submit("slow_flagged", once_flag, 1.5, retries=0)
        wait_for(lambda: os.path.exists(flag) and os.path.exists(once_flag), what="calls running")
        kill_host(a)

        assert running.result(timeout=60) == 1.5
        assert on_finished.result(timeout=60)["value"] == 3
        with pytest.raises(ClusterUnavailable, match=r"argument slow_flagged#\d+ was unfinished"):
            on_running.result(timeout=60)
        with pytest.raises(ClusterUnavailable, match=r"must not repeat \(retries=0\)"):
            once.result(timeout=60)
        assert three.result() == 3  # finished futures stay finished
        # Its result was on the lost node: a new call gets the value instead.
        assert mpreg.submit("add", three, 10).result(timeout=10) == 13
        with pytest.raises(ClusterUnavailable, match="pass its result"):
            mpreg.request([Command("x", "add", [three, 1])], timeout=10)


@pytest.mark.timeout(60)
def test_with_every_member_dead_requests_fail_within_the_reconnect_timeout(
    tmp_path: Path,
) -> None:
    with (
        cluster_of(tmp_path, 2) as cluster,
        driver(cluster.nodes[0].address, cluster.token, reconnect_timeout=2.0) as c,
    ):
        assert mpreg.request([Command("a", "add", [1, 2])], timeout=10) == {"a": 3}
        pending = mpreg.submit("slow", 5.0)
        for member in cluster.nodes:
            kill_host(member)
        for _ in range(2):  # after giving up, the next request looks for a member again
            started = time.monotonic()
            with pytest.raises(ClusterUnavailable) as caught:
                mpreg.request([Command("a", "add", [1, 2])], timeout=30)
            assert time.monotonic() - started < 2.0 + 3.0
            message = str(caught.value)
            assert "no cluster member answered within 2s" in message
            assert all(member.address in message for member in cluster.nodes)
        with pytest.raises(ClusterUnavailable):
            pending.result(timeout=10)
        # It may have reached the second node between the two kills: either is named.
        assert repr(c).endswith(" unavailable>")
        assert any(f" {member.address} " in repr(c) for member in cluster.nodes)


# --- the async client -----------------------------------------------------------------


@pytest.fixture
def two_nodes(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_of(tmp_path, 2) as cluster:
        yield cluster


@pytest.mark.timeout(120)
async def test_the_async_client_goes_on_with_another_node(two_nodes: Cluster) -> None:
    a, b = two_nodes.nodes
    async with Client(a.address, token=two_nodes.token, reconnect_timeout=10) as client:
        assert set(client.members) == {a.address, b.address}
        first = await client.request(WHO, timeout=10)
        assert first["w"]["label"] == "OwnsA"
        kill_host(a)
        killed_at = time.monotonic()
        answer = await client.request(WHO, timeout=30)
        assert time.monotonic() - killed_at < FAILOVER_BOUND
        assert served_by(answer["w"], b)
        assert client.address == b.address and repr(client).endswith(f"{b.address} open>")
        states = {n.node.address: n.state for n in (await client.status(timeout=10)).nodes}
        assert states[b.address] == "alive"
        assert states.get(a.address, "dead") != "alive"  # shown as suspect or dead until forgotten
        assert await client.submit("add", 2, 3) == 5


@pytest.mark.timeout(60)
async def test_close_never_reconnects(two_nodes: Cluster) -> None:
    a, _ = two_nodes.nodes
    client = Client(a.address, token=two_nodes.token)
    await client.connect()
    slow = asyncio.ensure_future(client.request([Command("s", "slow", [5.0])], timeout=30))
    async with asyncio.timeout(10):
        while not any(getattr(w, "sent", False) for w in client._waiting.values()):  # noqa: ASYNC110
            await asyncio.sleep(0.01)  # ok-sleep: polling until the request is out, bounded
    await client.close()
    with pytest.raises(ClusterUnavailable):
        await slow
    assert repr(client).endswith("closed>") and not client.connected
    started = time.monotonic()
    with pytest.raises(ClusterUnavailable, match="not connected"):
        await client.request([Command("a", "add", [1, 2])], timeout=10)
    with pytest.raises(ClusterUnavailable):
        client.submit("add", 1, 2)
    assert time.monotonic() - started < 0.5
    assert not client.connected and len(client.link._tasks) == 0


@pytest.mark.timeout(60)
async def test_close_while_reconnecting_stops_looking(tmp_path: Path) -> None:
    token = secrets.token_hex(16)
    config = node("solo", functions=FUNCTIONS, workers=1, token=token)
    solo = await asyncio.to_thread(start_detached, config, log_path=tmp_path / "solo.log")
    try:
        client = Client(solo.address, token=token, reconnect_timeout=30)
        await client.connect()
        kill_host(solo)
        waiting = asyncio.ensure_future(client.request([Command("a", "add", [1, 2])], timeout=30))
        async with asyncio.timeout(10):
            while "reconnecting" not in repr(client):  # noqa: ASYNC110 - polling the client
                await asyncio.sleep(0.01)  # ok-sleep: polling, bounded by the timeout
        started = time.monotonic()
        await client.close()
        assert time.monotonic() - started < 1.0
        with pytest.raises(ClusterUnavailable, match="closed"):
            await waiting
        assert repr(client).endswith("closed>") and len(client.link._tasks) == 0
    finally:
        kill_host(solo)
