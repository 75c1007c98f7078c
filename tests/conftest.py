"""Shared fixtures: real node processes on ephemeral loopback ports."""

from __future__ import annotations

import asyncio
import os
import subprocess
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Mapping

import cluster_actors as ca
import pytest
import uvloop

from mpreg import Client
from mpreg.host.cluster import LocalCluster
from mpreg.testing import node, run_cluster

FUNCTIONS = (
    ca.whereami,
    ca.slow,
    ca.add,
    ca.fail,
    ca.unpicklable_result,
    ca.lock_result,
    ca.chatty,
    ca.exits,
)


@pytest.fixture
async def one_node() -> AsyncIterator[LocalCluster]:
    """One node: two function workers, an Iris actor with two replicas."""
    async with run_cluster(node("solo", workers=2, functions=FUNCTIONS, actors=(ca.Iris,))) as c:
        yield c


@pytest.fixture
async def client(one_node: LocalCluster) -> AsyncIterator[Client]:
    async with Client(one_node.address, token=one_node.token) as c:
        yield c


_loop_errors: list[dict[str, object]] = []


def _strict(
    factory: Callable[[], asyncio.AbstractEventLoop],
) -> Callable[[], asyncio.AbstractEventLoop]:
    """A loop factory whose loops record unhandled exceptions, so the test fails on them."""

    def make() -> asyncio.AbstractEventLoop:
        loop = factory()
        loop.set_exception_handler(lambda _loop, context: _loop_errors.append(context))
        return loop

    return make


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    """Every async test runs on plain asyncio and on uvloop: the client must work on both.

    A cluster test (real node processes, which run uvloop whatever the test's
    loop) runs on one of the two, picked by its name: about half on each, so
    both loops still drive the client against real nodes, in half the time.
    """
    both = {"asyncio": _strict(asyncio.new_event_loop), "uvloop": _strict(uvloop.new_event_loop)}
    if item.get_closest_marker("cluster") is None:
        return both
    name = "asyncio" if zlib.crc32(item.nodeid.encode()) % 2 else "uvloop"
    return {name: both[name]}


@pytest.fixture(autouse=True)
def no_unhandled_loop_exceptions() -> Iterator[None]:
    _loop_errors.clear()
    yield
    assert not _loop_errors, f"unhandled event-loop exceptions: {_loop_errors}"


# --- the cluster mark ------------------------------------------------------------
# Only tests marked ``cluster`` may start processes, so ``-m "not cluster"`` is a
# fast tier of pure tests. The mark is checked, not trusted: an unmarked test
# that spawns (directly, or through a fixture or an embedded cluster) fails.

_CHILDREN_BEFORE = pytest.StashKey[set[int]]()


class _StartsProcess(Exception):
    """Raised in a test not marked ``cluster`` that starts a process."""


def _live_children() -> set[int]:
    """Pids of this process's children that have not exited (zombies excluded)."""
    me = str(os.getpid())
    found: set[int] = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.add(int(entry))
    return found


def _refuse_spawns(item: pytest.Item, monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise _StartsProcess(f"{item.nodeid} starts a process: mark it @pytest.mark.cluster")

    monkeypatch.setattr(os, "posix_spawn", refuse)
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)
    monkeypatch.setattr(asyncio, "create_subprocess_exec", refuse)
    monkeypatch.setattr(asyncio, "create_subprocess_shell", refuse)


@pytest.fixture(autouse=True)
def processes_only_in_cluster_tests(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    if request.node.get_closest_marker("cluster") is None:
        _refuse_spawns(request.node, monkeypatch)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    item.stash[_CHILDREN_BEFORE] = _live_children()
    yield


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield
    # Catches what the spawn guard cannot see: uvloop spawns through libuv.
    if item.get_closest_marker("cluster") is None:
        started = _live_children() - item.stash.get(_CHILDREN_BEFORE, set())
        if started:
            raise _StartsProcess(
                f"{item.nodeid} ran with child processes {sorted(started)}: "
                "mark it @pytest.mark.cluster"
            )
