"""A cluster of node processes on this host: the embedded cluster and the test fixture.

Each node is a real ``python -m mpreg.server`` process on an ephemeral
loopback port; the first is the head, the others join it. The processes
watch their stdin and stop when the parent closes it or dies.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import sys
from dataclasses import dataclass, field, replace

import cloudpickle

from mpreg.config import NodeConfig
from mpreg.errors import ClusterUnavailable

log = logging.getLogger(__name__)

START_TIMEOUT = 60.0
STOP_GRACE = 10.0


@dataclass(eq=False)
class NodeProcess:
    config: NodeConfig
    process: asyncio.subprocess.Process
    address: str = ""
    node_id: str = ""

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass(eq=False)
class LocalCluster:
    """Node processes started by this process; ``stop()`` ends them all."""

    token: str = field(default_factory=lambda: secrets.token_hex(16))
    nodes: list[NodeProcess] = field(default_factory=list)

    @property
    def address(self) -> str:
        return self.nodes[0].address

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    async def add_node(self, config: NodeConfig, *, join: bool = True) -> NodeProcess:
        """Start one node process (joining the first node unless ``join`` is False)."""
        peers = config.peers
        if join and self.nodes and not peers:
            peers = (self.nodes[0].address,)
        config = replace(config, token=self.token, peers=peers, port=config.port)
        blob = cloudpickle.dumps(config)
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "mpreg.server",
            "--exit-with-parent",
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        node = NodeProcess(config, process)
        self.nodes.append(node)
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(b"%d\n" % len(blob) + blob)
        await process.stdin.drain()
        try:
            async with asyncio.timeout(START_TIMEOUT):
                line = await process.stdout.readline()
        except TimeoutError:
            raise ClusterUnavailable(
                f"node {config.name!r} did not start within {START_TIMEOUT:g}s"
            ) from None
        try:
            announced = json.loads(line)
        except json.JSONDecodeError:
            announced = {"error": f"node exited with code {await process.wait()}"}
        if "error" in announced:
            raise ClusterUnavailable(f"node {config.name!r} failed to start: {announced['error']}")
        node.address = announced["address"]
        node.node_id = announced["node_id"]
        return node

    async def kill(self, index: int) -> None:
        """SIGKILL one node process (failure tests)."""
        node = self.nodes[index]
        if node.process.returncode is None:
            node.process.kill()
            await node.process.wait()

    async def stop(self) -> None:
        """Close every node's stdin (a clean stop), then escalate: SIGTERM, SIGKILL."""
        procs = [n.process for n in self.nodes if n.process.returncode is None]
        for proc in procs:
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()
        for signal_name in ("terminate", "kill"):
            alive = [p for p in procs if p.returncode is None]
            if not alive:
                break
            try:
                async with asyncio.timeout(STOP_GRACE):
                    await asyncio.gather(*(p.wait() for p in alive))
            except TimeoutError:
                for p in alive:
                    if p.returncode is None:
                        log.warning("node pid=%s did not stop; %s", p.pid, signal_name)
                        getattr(p, signal_name)()
        await asyncio.gather(*(p.wait() for p in procs))
