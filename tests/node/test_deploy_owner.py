"""A deployment's node-side lifetime: the node that took it dies, its members stop what it owned.

Two CLI-started nodes; a driver on the head deploys one owned and one detached
actor (a replica on each node), then the head is killed with all its
processes. The other node sees it declared dead and stops its replica of the
owned deployment; the detached one keeps serving there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Shell, private_shell, wait_until

from mpreg.host import state

pytestmark = pytest.mark.cluster

DRIVER = """
import sys, mpreg

class Owned:
    def owned(self):
        return 1

class Kept:
    def kept(self):
        return 2

mpreg.init("auto", reconnect_timeout=1)
mpreg.deploy(Owned)
mpreg.deploy(Kept, detached=True)
print("ready", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    yield from private_shell(tmp_path, monkeypatch)


def labels(shell: Shell, address: str) -> list[str]:
    nodes = shell.status(address)["nodes"]
    return sorted(ep["label"] for n in nodes for ep in n["endpoints"])  # type: ignore[attr-defined]


def test_a_dead_deploying_node_takes_its_owned_deployments_with_it(shell: Shell) -> None:
    shell.ok("start", "--head", "--port", "0", "--workers", "1", "--name", "first")
    head = state.read_local_cluster()
    shell.ok("start", "--join", head.address, "--name", "second", "--workers", "1")
    second = next(r for r in shell.records() if not r.head)
    first = next(r for r in shell.records() if r.head)
    with subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(DRIVER)],
        cwd=shell.cwd,
        env=shell.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    ) as driver:
        try:
            assert driver.stdout is not None
            assert driver.stdout.readline().strip() == b"ready"
            assert labels(shell, second.address).count("Owned v1") == 2
            with contextlib.suppress(ProcessLookupError):
                os.killpg(first.pid, signal.SIGKILL)  # the head's host dies
            wait_until(
                lambda: "Owned v1" not in labels(shell, second.address),
                20,
                "the survivor to stop the dead node's owned deployment",
            )
            assert labels(shell, second.address).count("Kept v1") == 1
        finally:
            driver.kill()
            driver.wait()
