"""An mpreg cluster across hosts: one node per network namespace, on a private bridge.

Four "hosts" (tests/multihost/netns.py): h1, h2 and h3 each run a real
``mpreg start --block`` node with one actor (dataset ``h1``, ``h2``, ``h3``),
h4 runs the drivers. h1 founds the cluster on its interface address, h2 joins
it by address, h3 listens on 0.0.0.0 and joins through a name that resolves
to several addresses (its own, a host where nothing listens, h2, h1). Nothing
here addresses anything but these namespaces.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from netns import Network, network, unavailable

from mpreg.config import default_node_name

pytestmark = pytest.mark.cluster

PORT = 7773
NODES = 3  # hosts 0..2 run nodes; host 3 runs the drivers
DRIVER_HOST = 3
START_TIMEOUT = 30.0
BIG = 8 * 1024 * 1024  # far above lz4's threshold (COMPRESS_MIN_BYTES, 256 KiB)

ACTOR = """
import mpreg


@mpreg.actor(datasets=[{dataset!r}])
class {cls}:
    def where(self):
        return {dataset!r}

    def size(self, data):
        return len(data)
"""

# Every driver starts with this: a client of the node at ADDRESS, results as one JSON line.
PRELUDE = """
import asyncio, json, os, sys, time
from mpreg import Client, Command, NoRouteError

TOKEN = os.environ["MPREG_TOKEN"]


async def names(address):
    async with Client(address, token=TOKEN) as client:
        status = await client.status(timeout=10)
    return sorted([n.node.name, n.node.address] for n in status.nodes)


async def where(address, dataset, timeout=10):
    async with Client(address, token=TOKEN) as client:
        result = await client.request([Command("w", "where", [], [dataset])], timeout=timeout)
    return result["w"]
"""


@dataclass
class Hosts:
    net: Network
    token: str
    logs: list[Path]
    homes: list[Path]  # each host's MPREG_HOME

    def address(self, i: int) -> str:
        return f"{self.net.address(i)}:{PORT}"

    def log(self, i: int) -> str:
        return self.logs[i].read_text(errors="replace")

    def driver(self, body: str, timeout: float = 30.0) -> Any:
        """Run ``body`` (after PRELUDE) on the driver host; the JSON it printed last."""
        code = PRELUDE + textwrap.dedent(body)
        proc = subprocess.run(
            self.net.command(DRIVER_HOST, [sys.executable, "-c", code]),
            env=_env(MPREG_TOKEN=self.token),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert proc.returncode == 0, f"driver failed:\n{proc.stderr}{proc.stdout}"
        return json.loads(proc.stdout.strip().splitlines()[-1])


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MPREG_")}
    env.update(extra)
    return env


def _wait_served(proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while "serves at" not in log.read_text(errors="replace"):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"node did not start; its output:\n{log.read_text()}")
        time.sleep(0.05)  # ok-sleep: polling its log, bounded by a deadline


def _stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM every node's process group (the node and its actors), SIGKILL what lingers."""
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + 10
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group: actors that outlived the node
        proc.wait(timeout=5)


def _wait_converged(hosts: Hosts) -> None:
    """Until every node sees all of them alive (news of a joiner spreads by gossip)."""
    addresses = [hosts.address(i) for i in range(NODES)]
    hosts.driver(
        f"""
        async def states(address):
            async with Client(address, token=TOKEN) as client:
                return [n.state for n in (await client.status(timeout=10)).nodes]

        async def main():
            deadline = time.monotonic() + 15
            while True:
                views = [await states(a) for a in {addresses!r}]
                if all(v == ["alive"] * {NODES} for v in views):
                    return True
                if time.monotonic() > deadline:
                    raise SystemExit(f"the nodes did not converge: {{views}}")
                await asyncio.sleep(0.1)  # ok-sleep: polling, bounded by the deadline

        print(json.dumps(asyncio.run(main())))
        """
    )


@pytest.fixture(scope="module")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    tmp = tmp_path_factory.mktemp("multihost")
    token = "multihost-" + os.urandom(8).hex()
    procs: list[subprocess.Popen[bytes]] = []
    logs = [tmp / f"h{i + 1}.log" for i in range(NODES)]
    homes = [tmp / f"home{i + 1}" for i in range(NODES)]
    with network(NODES + 1) as net:
        # h3 resolves one name to four addresses: itself (skipped), a host where nothing
        # listens (refused), then two live nodes.
        seeds = [net.address(i) for i in (2, DRIVER_HOST, 1, 0)]
        net.etc(2, "hosts", "127.0.0.1 localhost\n" + "".join(f"{a} mpreg-seeds\n" for a in seeds))

        def start(i: int, *args: str) -> subprocess.Popen[bytes]:
            module = tmp / f"host{i + 1}.py"
            module.write_text(ACTOR.format(dataset=f"h{i + 1}", cls=f"Host{i + 1}"))
            argv = [sys.executable, "-m", "mpreg.cli", "start", "--block", "--port", str(PORT)]
            argv += ["--workers", "0", "--module", str(module), *args]
            env = _env(MPREG_HOME=str(homes[i]), MPREG_TOKEN=token)
            with logs[i].open("wb") as out:
                proc = subprocess.Popen(
                    net.command(i, argv),
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            procs.append(proc)
            return proc

        try:
            _wait_served(start(0, "--head", "--host", net.address(0), "--name", "h1"), logs[0])
            second = start(1, "--join", f"{net.address(0)}:{PORT}", "--host", net.address(1))
            third = start(2, "--host", "0.0.0.0", "--join", f"mpreg-seeds:{PORT}")
            _wait_served(second, logs[1])
            _wait_served(third, logs[2])
            hosts = Hosts(net, token, logs, homes)
            _wait_converged(hosts)
            yield hosts
        finally:
            _stop(procs)


def test_nodes_on_three_hosts_form_one_cluster_seen_alike_from_each(hosts: Hosts) -> None:
    views = hosts.driver(
        f"""
        async def main():
            return [await names(a) for a in {[hosts.address(i) for i in range(NODES)]!r}]

        print(json.dumps(asyncio.run(main())))
        """
    )
    # h2 was started without --name: "<short host name>-<port>" (the namespaces share
    # the machine's host name; real hosts each have their own).
    expected = [
        ["h1", hosts.address(0)],
        [default_node_name(PORT), hosts.address(1)],
        [default_node_name(PORT), hosts.address(2)],
    ]
    for view in views:
        assert sorted(view) == sorted(expected)


def test_a_wildcard_node_advertises_its_interface_and_joins_through_a_dns_seed(
    hosts: Hosts,
) -> None:
    log = hosts.log(2)
    own = hosts.net.address(2)
    assert f"note: listening on every interface (0.0.0.0); peers and clients will dial {own}" in (
        log
    )
    assert f"serves at {hosts.address(2)}" in log
    (record,) = (hosts.homes[2] / "nodes").glob("*.json")  # what `mpreg status` there reads
    assert json.loads(record.read_text())["address"] == hosts.address(2)
    # Through a live node, never through itself (its own address is skipped, not dialled).
    live = {hosts.address(0), hosts.address(1)}
    joined = [line for line in log.splitlines() if "joined the cluster through" in line]
    # A key=value log line: msg="joined the cluster through HOST:PORT"
    assert len(joined) == 1 and joined[0].rsplit(" ", 1)[1].strip('"') in live, log
    assert f"seed {hosts.address(2)} did not answer" not in log


def test_a_driver_on_another_host_gets_results_from_actors_on_every_host(hosts: Hosts) -> None:
    results = hosts.driver(
        f"""
        async def main():
            out = {{}}
            for entry in {[hosts.address(0), hosts.address(2)]!r}:
                out[entry] = [await where(entry, d) for d in ("h1", "h2", "h3")]
            async with Client({hosts.address(1)!r}, token=TOKEN) as client:
                # Dependencies resolve inside the cluster: h1's result feeds h3's actor.
                dag = await client.request(
                    [Command("|w", "where", [], ["h1"]), Command("|n", "size", ["|w"], ["h3"])],
                    timeout=10,
                )
            out["dag"] = dag["|n"]
            return out

        print(json.dumps(asyncio.run(main())))
        """
    )
    assert results[hosts.address(0)] == ["h1", "h2", "h3"]
    assert results[hosts.address(2)] == ["h1", "h2", "h3"]
    assert results["dag"] == 2


def _send_big(hosts: Hosts, kind: str) -> tuple[int, int]:
    """Send BIG bytes from the driver host through h1 to h2's actor; bytes on the wires.

    Returns what the driver host sent on its cable (the client link) and what
    h2 received on its own (the node-to-node link), while the call ran.
    """
    before = hosts.net.counters(DRIVER_HOST)[1], hosts.net.counters(1)[0]
    size = hosts.driver(
        f"""
        data = b"mpreg runs function X on dataset Y. " * ({BIG} // 36 + 1)
        data = data[:{BIG}] if {kind!r} == "text" else os.urandom({BIG})

        async def main():
            async with Client({hosts.address(0)!r}, token=TOKEN) as client:
                result = await client.request([Command("n", "size", [data], ["h2"])], timeout=20)
            return result["n"]

        print(json.dumps(asyncio.run(main())))
        """
    )
    assert size == BIG
    after = hosts.net.counters(DRIVER_HOST)[1], hosts.net.counters(1)[0]
    return after[0] - before[0], after[1] - before[1]


def test_large_arguments_crossing_hosts_travel_lz4_compressed(hosts: Hosts) -> None:
    client_link, node_link = _send_big(hosts, "text")
    # 8 MiB of text shrinks to well under 1 MiB with lz4, on both links it crossed.
    assert client_link < BIG // 8, client_link
    assert node_link < BIG // 8, node_link
    # The same size of random bytes does not compress: the counters do see 8 MiB.
    client_link, node_link = _send_big(hosts, "random")
    assert client_link > BIG, client_link
    assert node_link > BIG, node_link


def test_a_host_cut_off_leaves_routing_and_serves_again_once_reconnected(hosts: Hosts) -> None:
    # Last in this module: it cuts h2's cable (and plugs it back in, whatever happens).
    gone_within, back_within = 5.0, 10.0
    hosts.net.link(1, up=False)
    try:
        gone = hosts.driver(
            f"""
            async def main():
                start = time.monotonic()
                while time.monotonic() - start < {gone_within}:
                    try:
                        await where({hosts.address(0)!r}, "h2", timeout=0.5)
                    except NoRouteError:
                        return time.monotonic() - start
                    except Exception:
                        pass  # sent to h2 and not answered: not declared gone yet
                return None

            print(json.dumps(asyncio.run(main())))
            """
        )
    finally:
        hosts.net.link(1, up=True)
    assert gone is not None, f"h2 still routed to {gone_within:g}s after its link went down"
    back = hosts.driver(
        f"""
        async def main():
            start = time.monotonic()
            while time.monotonic() - start < {back_within}:
                try:
                    if await where({hosts.address(0)!r}, "h2", timeout=0.5) == "h2":
                        return time.monotonic() - start
                except Exception:
                    await asyncio.sleep(0.1)  # ok-sleep: polling, bounded by the deadline
            return None

        print(json.dumps(asyncio.run(main())))
        """
    )
    assert back is not None, f"h2's actor did not serve {back_within:g}s after its link came up"
