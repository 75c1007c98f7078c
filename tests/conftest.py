"""Shared fixtures: real node processes on ephemeral loopback ports."""

from __future__ import annotations

from collections.abc import AsyncIterator

import cluster_actors as ca
import pytest

from mpreg import Client
from mpreg.cluster import LocalCluster
from mpreg.testing import node, run_cluster

FUNCTIONS = (ca.whereami, ca.slow, ca.add, ca.fail, ca.unpicklable_result, ca.lock_result)


@pytest.fixture
async def one_node() -> AsyncIterator[LocalCluster]:
    """One node: two function workers, an Iris actor with two replicas."""
    async with run_cluster(node("solo", workers=2, functions=FUNCTIONS, actors=(ca.Iris,))) as c:
        yield c


@pytest.fixture
async def client(one_node: LocalCluster) -> AsyncIterator[Client]:
    async with Client(one_node.address, token=one_node.token) as c:
        yield c
