"""A node's process entry: ``python -m mpreg.server``.

Reads its NodeConfig (cloudpickled, length-prefixed) from stdin, starts the
node, prints one JSON line ``{"address": ..., "node_id": ..., "pid": ...}``
once every initial worker serves (or ``{"error": ...}`` and exits 1), then
serves until SIGTERM/SIGINT or, with ``--exit-with-parent``, until its stdin
closes: an embedded cluster ends when its driver does, even after kill -9.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import sys

import cloudpickle

from mpreg.config import NodeConfig
from mpreg.node import Node
from mpreg.transport.loop import install_best_loop

log = logging.getLogger("mpreg.server")


async def serve(
    config: NodeConfig, *, exit_with_parent: bool = False, announce: bool = True
) -> int:
    """Run one node until asked to stop; return the process exit code."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if exit_with_parent:
        fd = sys.stdin.fileno()

        def on_stdin() -> None:
            if not os.read(fd, 4096):
                loop.remove_reader(fd)
                stop.set()

        loop.add_reader(fd, on_stdin)
    node = Node(config)
    try:
        address = await node.start()
        await node.wait_ready()
    except Exception as exc:
        await node.stop()
        if announce:
            print(json.dumps({"error": f"{type(exc).__name__}: {exc}"}), flush=True)
        else:
            raise
        return 1
    if announce:
        print(
            json.dumps({"address": address, "node_id": node.node_id, "pid": os.getpid()}),
            flush=True,
        )
    await stop.wait()
    await node.stop()
    return 0


def _read_config() -> NodeConfig:
    stdin = sys.stdin.buffer
    size = int(stdin.readline())
    config = cloudpickle.loads(stdin.read(size))
    if not isinstance(config, NodeConfig):
        raise SystemExit("mpreg.server: stdin did not carry a NodeConfig")
    return config


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mpreg.server")
    parser.add_argument("--exit-with-parent", action="store_true")
    parser.add_argument("--log-level", default=os.environ.get("MPREG_LOG_LEVEL", "WARNING"))
    ns = parser.parse_args(argv)
    logging.basicConfig(
        level=ns.log_level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    config = _read_config()
    if ns.exit_with_parent:
        from mpreg.actors.worker import _die_with_parent

        _die_with_parent()
    install_best_loop()
    sys.exit(asyncio.run(serve(config, exit_with_parent=ns.exit_with_parent)))


if __name__ == "__main__":
    main()
