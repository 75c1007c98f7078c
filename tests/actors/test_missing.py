"""An argument whose module the cluster's environment lacks: the error says which
module, on which node, and how to add it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from mpreg.commands import Command
from mpreg.driver.client import Client
from mpreg.errors import SerializationError
from mpreg.testing import node, run_cluster

pytestmark = pytest.mark.cluster


async def test_a_missing_module_is_named_with_its_node_and_a_fix(tmp_path: Path) -> None:
    async with run_cluster(node("lacking")) as cluster:
        # Importable here only from now on: the node took this process's path at its start.
        (tmp_path / "only_in_the_driver.py").write_text(
            "class Point:\n    def __init__(self, x):\n        self.x = x\n"
        )
        sys.path.insert(0, str(tmp_path))
        try:
            import only_in_the_driver  # type: ignore[import-not-found]

            async with Client(cluster.address, token=cluster.token) as client:
                with pytest.raises(SerializationError) as info:
                    await client.request(
                        [Command("c", "echo", [only_in_the_driver.Point(1)], [])], timeout=20
                    )
        finally:
            sys.path.remove(str(tmp_path))
            sys.modules.pop("only_in_the_driver", None)
    message = str(info.value)
    assert "module 'only_in_the_driver' is not installed on node" in message
    assert cluster.nodes[0].node_id in message
    assert sys.executable in message  # the node's Python: the embedded cluster runs ours
    assert "restart the cluster's nodes" in message
