"""Starting a node on this host for ``mpreg start``: one head per host, a record per node.

:func:`start_detached_node` starts a node that outlives its caller,
:func:`run_foreground` serves one in this process; both record it in the
per-host state (:mod:`mpreg.host.state`) so ``mpreg stop``, ``mpreg status``
and ``mpreg.init("auto")`` find it. Failures are typed
(:class:`~mpreg.errors.NodeStartError` and its subclasses); the caller
words them.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from typing import Any

from mpreg.config import NodeConfig, node_label
from mpreg.errors import MpregError, NodeStartError, UsageError
from mpreg.host import state
from mpreg.host.invocation import mpreg_command
from mpreg.host.start_failures import StartFailure, failure_announce, start_error


def refuse_second_head() -> None:
    """Raise UsageError if a head node already runs on this host (one cluster per host)."""
    heads = [r for r in state.list_records() if r.head]
    if heads:
        mpreg = mpreg_command()
        raise UsageError(
            f"mpreg already runs on this host: {heads[0].name!r} at {heads[0].address} "
            f"(pid {heads[0].pid}); `{mpreg} stop` first, or add a node with "
            f"`{mpreg} start --join {heads[0].address}`"
        )


def start_detached_node(
    config: NodeConfig,
    *,
    head: bool,
    timeout: float,
    log_level: str | None = None,
    log_format: str = "kv",
) -> state.NodeRecord:
    """Start ``config``'s node detached (logging to a fresh file); record it once it serves.

    ``head``: it started this host's cluster (``mpreg start --head``).
    Raises NodeStartError (AddressInUse, JoinFailed, ...) if it does not
    start; nothing is left running or recorded then.
    """
    from mpreg.host.cluster import start_detached

    log_path = state.new_log_path(node_label(config))
    node = start_detached(
        config,
        log_path=log_path,
        timeout=timeout,
        log_level=log_level or "INFO",
        log_format=log_format,
    )
    record = state.NodeRecord(
        pid=node.pid,
        address=node.address,
        node_id=node.node_id,
        name=node.name or node_label(config),
        head=head,
        group=True,
        start_time=state.process_start_time(node.pid) or 0,
        log=str(log_path),
        started_at=time.time(),
    )
    state.write_record(record)
    return record


def run_foreground(
    config: NodeConfig, *, head: bool, on_ready: Callable[[state.NodeRecord], None]
) -> int:
    """Serve ``config``'s node in this process until SIGINT/SIGTERM; its exit code.

    It is recorded while it serves (``on_ready`` gets the record; ``head``
    as for :func:`start_detached_node`). Raises
    AddressInUse if its port is taken, JoinFailed if no seed answers, NodeStartError for
    another OS error.
    """
    from mpreg.host.server import serve
    from mpreg.transport.loop import install_best_loop

    def ready(node: Any) -> None:
        record = state.NodeRecord(
            pid=os.getpid(),
            address=node.address,
            node_id=node.node_id,
            name=node.config.name,  # named by now: an unnamed node takes its port's name
            head=head,
            group=False,
            start_time=state.process_start_time(os.getpid()) or 0,
            started_at=time.time(),
        )
        state.write_record(record)
        on_ready(record)

    install_best_loop()
    try:
        return asyncio.run(serve(config, announce=False, on_ready=ready))
    except MpregError:
        raise  # typed where it happened (JoinFailed): an OSError too, not to be re-worded
    except OSError as exc:
        announced = failure_announce(exc, config)
        if announced.reason == StartFailure.ADDRESS_IN_USE:
            raise start_error(config, announced) from None
        raise NodeStartError(f"{exc.strerror or exc}", node=node_label(config)) from None
    finally:
        state.remove_record(os.getpid())
