"""The driver of mpreg.sbatch: wait for a node on every host, then run the work.

Usage: python3 driver.py SEED:PORT NODES (the token comes from MPREG_TOKEN).
"""

from __future__ import annotations

import sys
import time

import mpreg
from mpreg import Command

JOIN_DEADLINE = 300.0  # seconds for every host's node to start (actors may load models)


def wait_for_nodes(expected: int) -> None:
    deadline = time.monotonic() + JOIN_DEADLINE
    while True:
        nodes = mpreg.cluster_status().nodes
        if len(nodes) >= expected:
            names = ", ".join(f"{n.node.name} ({n.node.address})" for n in nodes)
            print(f"{len(nodes)} nodes: {names}", flush=True)
            return
        if time.monotonic() > deadline:
            raise SystemExit(f"only {len(nodes)} of {expected} nodes joined in {JOIN_DEADLINE}s")
        time.sleep(1)


def main() -> None:
    address, expected = sys.argv[1], int(sys.argv[2])
    mpreg.init(address)
    wait_for_nodes(expected)
    # The work: replace with your own requests (functions and datasets from models.py).
    print(mpreg.request([Command("hello", "echo", ["hello from every host"], [])]))
    mpreg.shutdown()


if __name__ == "__main__":
    main()
