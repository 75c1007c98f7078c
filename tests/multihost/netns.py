"""A private network of Linux network namespaces: "hosts" on one bridge, and nothing else.

Host ``i`` is a network namespace with one interface, ``eth0``, holding
``10.231.0.<i+1>/24``, cabled (a veth pair) to a bridge that lives in a
namespace of its own. No interface of the machine's own namespace takes part
and no host has a route beyond 10.231.0.0/24, so nothing sent in here can
leave it. Every namespace name carries a random tag, so parallel runs never
meet. ``ip netns exec`` gives a host its own ``/etc/hosts`` and
``/etc/resolv.conf`` from ``/etc/netns/<namespace>/``: a name resolves to
what the test wrote there, and DNS (if a lookup ever reached it) asks the
host's own loopback, where nothing listens.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUBNET = "10.231.0"
NETNS_ETC = Path("/etc/netns")


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check, timeout=10)


def unavailable() -> str | None:
    """Why namespaces cannot be made here (not root, no ``ip``, refused), or None."""
    if os.geteuid() != 0:
        return "network namespaces need root"
    if shutil.which("ip") is None:
        return "the ip command (iproute2) is not installed"
    probe = f"mpreg-probe-{secrets.token_hex(4)}"
    made = _ip("netns", "add", probe, check=False)
    if made.returncode != 0:
        return f"`ip netns add` is not permitted here: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


@dataclass
class Network:
    """``count`` hosts on one bridge; :meth:`close` removes every trace."""

    count: int
    tag: str = field(default_factory=lambda: secrets.token_hex(3))
    made: list[str] = field(default_factory=list)  # namespaces, to delete

    @property
    def switch(self) -> str:
        return f"mpreg-{self.tag}-sw"

    def ns(self, i: int) -> str:
        return f"mpreg-{self.tag}-h{i + 1}"

    def address(self, i: int) -> str:
        return f"{SUBNET}.{i + 1}"

    def build(self) -> None:
        _ip("netns", "add", self.switch)
        self.made.append(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for i in range(self.count):
            ns = self.ns(i)
            _ip("netns", "add", ns)
            self.made.append(ns)
            # Made in the switch namespace (never in the machine's), one end then moved.
            host_end, switch_end = f"h{i + 1}", f"p{i + 1}"
            _ip("-n", self.switch, "link", "add", host_end, "type", "veth", "peer", switch_end)
            _ip("-n", self.switch, "link", "set", host_end, "netns", ns)
            _ip("-n", self.switch, "link", "set", switch_end, "master", "br0")
            _ip("-n", self.switch, "link", "set", switch_end, "up")
            _ip("-n", ns, "link", "set", host_end, "name", "eth0")
            _ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "link", "set", "lo", "up")
            self.etc(i, "resolv.conf", "nameserver 127.0.0.1\n")
            self.etc(i, "hosts", "127.0.0.1 localhost\n")

    def etc(self, i: int, name: str, text: str) -> None:
        """Host ``i``'s own ``/etc/<name>`` (``hosts``, ``resolv.conf``)."""
        directory = NETNS_ETC / self.ns(i)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / name).write_text(text)

    def command(self, i: int, argv: Sequence[str]) -> list[str]:
        """``argv`` run on host ``i``."""
        return ["ip", "netns", "exec", self.ns(i), *argv]

    def link(self, i: int, *, up: bool) -> None:
        """Plug host ``i``'s cable in or out (its eth0 up or down)."""
        _ip("-n", self.ns(i), "link", "set", "eth0", "up" if up else "down")

    def counters(self, i: int) -> tuple[int, int]:
        """Bytes host ``i`` received and sent on its eth0 so far."""
        out = _ip("-n", self.ns(i), "-s", "-j", "link", "show", "eth0").stdout
        stats = json.loads(out)[0]["stats64"]
        return int(stats["rx"]["bytes"]), int(stats["tx"]["bytes"])

    def close(self) -> None:
        """Delete every namespace made (their veths and the bridge go with them)."""
        for ns in reversed(self.made):
            _ip("netns", "del", ns, check=False)
            with contextlib.suppress(FileNotFoundError):
                shutil.rmtree(NETNS_ETC / ns)
        self.made.clear()


@contextlib.contextmanager
def network(count: int) -> Iterator[Network]:
    """``count`` hosts on a private bridge, removed on exit even if building failed."""
    net = Network(count)
    try:
        net.build()
        yield net
    finally:
        net.close()
