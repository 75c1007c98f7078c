"""Shared fixtures: real node processes on ephemeral loopback ports."""

from __future__ import annotations

import asyncio
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
    """Every async test runs on plain asyncio and on uvloop: the client must work on both."""
    return {"asyncio": _strict(asyncio.new_event_loop), "uvloop": _strict(uvloop.new_event_loop)}


@pytest.fixture(autouse=True)
def no_unhandled_loop_exceptions() -> Iterator[None]:
    _loop_errors.clear()
    yield
    assert not _loop_errors, f"unhandled event-loop exceptions: {_loop_errors}"
