"""A node's process entry: ``python -m mpreg.host.server``.

Reads its NodeConfig from stdin (:mod:`mpreg.host.handoff`), starts the
node, prints one JSON line ``{"address": ..., "node_id": ..., "pid": ...}``
once every initial worker serves (or ``{"error": ..., "reason": ...}`` and exits 1;
the format is :class:`~mpreg.host.announce.Announce`), then
serves until SIGTERM/SIGINT or, with ``--exit-with-parent``, until its stdin
closes: an embedded cluster ends when its driver does, even after kill -9.
With ``--announce-fd N`` that line goes to file descriptor N, which is then
closed (``mpreg start`` detaches a node this way: stdout goes to its log).
With ``--log-file`` the node writes its log there itself, rotating it by
size, and its workers print to per-actor files beside it (:mod:`mpreg.host.logs`,
:mod:`mpreg.actors.output`).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from mpreg.actors import output
from mpreg.actors.environment import adopt_parent_path, die_with_parent
from mpreg.config import NodeConfig
from mpreg.host import logs, state
from mpreg.host.announce import Announce
from mpreg.host.handoff import read_config
from mpreg.host.start_failures import failure_announce
from mpreg.node.node import Node
from mpreg.transport.loop import install_best_loop

if TYPE_CHECKING:
    from mpreg.host.prometheus import Exporter

log = logging.getLogger("mpreg.host.server")


async def serve(
    config: NodeConfig,
    *,
    exit_with_parent: bool = False,
    announce: bool = True,
    announce_to: TextIO | None = None,
    on_ready: Callable[[Node], None] | None = None,
) -> int:
    """Run one node until asked to stop; return the process exit code.

    ``announce`` prints the ready (or error) JSON line to ``announce_to``
    (stdout by default, closed after the line unless it is stdout); without
    it a start-up failure is raised. ``on_ready`` is called once the node serves.
    """
    out = announce_to or sys.stdout

    def say(line: str) -> None:
        print(line, file=out, flush=True)
        if out is not sys.stdout:
            out.close()

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
    node.on_token_rotated = state.follow_rotation  # the CLI on this host keeps working
    logs.set_node_name(lambda: node.config.name)  # an unnamed node is named once it binds
    exporter: Exporter | None = None
    try:
        address = await node.start()
        await node.wait_ready()
        if config.metrics_port is not None:  # taken: a start-up failure like the node's port
            # Imported only here: prometheus_client and http.server cost a node ~4 MiB.
            from mpreg.host.prometheus import start_exporter

            exporter = start_exporter(
                node, config.metrics_port, config.host, authorized=config.metrics_auth
            )
    except Exception as exc:
        await node.stop()
        if announce:
            # node.config: named by now if it bound its port (an unnamed node names itself then)
            say(failure_announce(exc, node.config).line())
        else:
            raise
        return 1
    if announce:
        say(Announce(address, node.node_id, os.getpid(), name=node.config.name).line())
    if on_ready is not None:
        on_ready(node)
    await stop.wait()
    if exporter is not None:
        exporter.close()  # first: a scrape waits on the loop the node stops
    await node.stop()
    return 0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mpreg.host.server")
    parser.add_argument("--exit-with-parent", action="store_true")
    parser.add_argument("--announce-fd", type=int, default=None)
    parser.add_argument("--log-level", default=os.environ.get("MPREG_LOG_LEVEL", "WARNING"))
    parser.add_argument(
        "--log-format", choices=logs.FORMATS, default=os.environ.get("MPREG_LOG_FORMAT", "kv")
    )
    parser.add_argument("--log-file", type=Path, default=None, help="rotated; else stderr")
    parser.add_argument(
        "--log-max-bytes",
        type=int,
        default=int(os.environ.get("MPREG_LOG_MAX_BYTES", logs.MAX_BYTES)),
    )
    parser.add_argument(
        "--log-backups", type=int, default=int(os.environ.get("MPREG_LOG_BACKUPS", logs.BACKUPS))
    )
    ns = parser.parse_args(argv)
    announce_to = os.fdopen(ns.announce_fd, "w") if ns.announce_fd is not None else None
    logs.configure(
        level=ns.log_level,
        fmt=ns.log_format,
        path=ns.log_file,
        max_bytes=ns.log_max_bytes,
        backups=ns.log_backups,
    )
    if ns.log_file is not None:
        output.capture_in(logs.actor_dir(ns.log_file), ns.log_max_bytes)
    adopt_parent_path()
    config = read_config(sys.stdin.buffer)
    logs.set_node_name(config.name)  # until serve() has the node
    if ns.exit_with_parent:
        die_with_parent()
    install_best_loop()
    sys.exit(
        asyncio.run(serve(config, exit_with_parent=ns.exit_with_parent, announce_to=announce_to))
    )


if __name__ == "__main__":
    main()
