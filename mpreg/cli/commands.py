"""One handler per ``mpreg`` command: read the arguments, build a config, call the library.

Each returns its exit code; errors are raised typed and worded by
:mod:`mpreg.cli.output`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from mpreg.cli.output import console, print_started
from mpreg.config import DEFAULT_PORT, NodeConfig, eager_workers_default, frame_bytes
from mpreg.errors import UsageError
from mpreg.host import launch, state
from mpreg.host.addresses import advertise_host, is_wildcard
from mpreg.host.config_file import load_config, resolve_module
from mpreg.host.tokens import client_token, start_token
from mpreg.node.seeds import split_seeds
from mpreg.transport.connection import parse_address
from mpreg.transport.tls import TLSFiles, clear_text_warning, server_context

# --- start / stop -----------------------------------------------------------------------


def cmd_start(ns: argparse.Namespace) -> int:
    """``mpreg start``: build the node's config, then start it detached or in the foreground.

    ``--head`` with seeds (``--join``, a config file's peers) founds a new
    cluster only if none of them answers: a restarted first node rejoins its
    cluster instead of starting a second one.
    """
    if not (ns.head or ns.join or ns.config):
        raise UsageError(
            "say what to start: --head (a new cluster), --join HOST:PORT[,...], or --config FILE"
        )
    config = _apply_options(load_config(ns.config) if ns.config else NodeConfig(), ns)
    if ns.head:
        launch.refuse_second_head()
    seeds = bool(config.peers)
    stored = state.read_token()
    token = start_token(ns.token, joining=seeds and not ns.head, rejoin=seeds)
    config = replace(config, token=token, join_optional=ns.head and seeds)
    head = ns.head or not seeds
    # Shown only as it is made: one given, or stored earlier, stays out of the output
    # (`mpreg token show` prints its fingerprint).
    show_token = not ns.token and token != stored
    if ns.block:
        from mpreg.host import logs

        logs.configure(level=ns.log_level or "INFO", fmt=ns.log_format)
        return launch.run_foreground(
            config,
            head=head,
            on_ready=lambda record: print_started(
                record, config, blocking=True, show_token=show_token
            ),
        )
    record = launch.start_detached_node(
        config, head=head, timeout=ns.timeout, log_level=ns.log_level, log_format=ns.log_format
    )
    print_started(record, config, show_token=show_token)
    warning = None if config.tls_cert else clear_text_warning(config.host, record.address)
    if warning:  # the node's log says it too, but nobody reads a detached node's log first
        print(warning, file=sys.stderr)
    return 0


def _apply_options(config: NodeConfig, ns: argparse.Namespace) -> NodeConfig:
    """Command-line options override the config file's fields."""
    changes: dict[str, Any] = {}
    if ns.name:
        changes["name"] = ns.name
    if ns.host:
        changes["host"] = ns.host
    if ns.port is not None:
        if not 0 <= ns.port <= 65535:
            raise UsageError(f"--port must be 0-65535, got {ns.port}")
        changes["port"] = ns.port
    elif not ns.config:
        changes["port"] = DEFAULT_PORT if ns.head or not ns.join else 0
    if ns.workers is not None:
        if ns.workers < 0:
            raise UsageError("--workers must be >= 0")
        changes["workers"] = ns.workers
    try:
        eager = ns.eager_workers
        if eager is None:  # no flag: $MPREG_EAGER_WORKERS, else the config's (eager)
            eager = eager_workers_default(config.eager_workers)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if eager != config.eager_workers:
        changes["eager_workers"] = eager
    if ns.metrics_port is not None:
        if not 0 <= ns.metrics_port <= 65535:
            raise UsageError(f"--metrics-port must be 0-65535, got {ns.metrics_port}")
        changes["metrics_port"] = ns.metrics_port
    if ns.max_store_mb is not None:
        if ns.max_store_mb < 1:
            raise UsageError(f"--max-store-mb must be at least 1, got {ns.max_store_mb}")
        changes["max_store_bytes"] = ns.max_store_mb * 1024 * 1024
    if ns.max_frame_mb is not None:
        if not ns.max_frame_mb > 0:
            raise UsageError(f"--max-frame-mb must be > 0, got {ns.max_frame_mb}")
        changes["max_frame_bytes"] = frame_bytes(ns.max_frame_mb)
    if ns.frame_stall_timeout is not None:
        if not ns.frame_stall_timeout > 0:
            raise UsageError(f"--frame-stall-timeout must be > 0, got {ns.frame_stall_timeout}")
        changes["frame_stall_timeout"] = ns.frame_stall_timeout
    if ns.metrics_auth:
        changes["metrics_auth"] = True
    if ns.no_lanes:
        changes["lanes"] = False
    modules = [*config.modules, *(resolve_module(m, Path.cwd()) for m in ns.module)]
    for module in modules:
        if module.endswith(".py") and not Path(module).is_file():
            raise UsageError(f"module file {module} does not exist")
    changes["modules"] = tuple(modules)
    changes["resources"] = (*config.resources, *ns.resource)
    if ns.join:
        try:
            seeds = split_seeds(ns.join)
        except ValueError as exc:
            raise UsageError(f"bad --join address: {exc}") from None
        if not seeds:
            raise UsageError("--join needs at least one HOST:PORT")
        changes["peers"] = (*seeds, *(p for p in config.peers if p not in seeds))
    changes.update(_tls_fields(config, ns))
    host = changes.get("host", config.host)
    chosen = ns.advertise_host or config.advertise_host
    changes["advertise_host"] = advertise_host(host, chosen)
    if is_wildcard(host) and not chosen:
        print(
            f"note: listening on every interface ({host or '0.0.0.0'}); peers and clients "
            f"will dial {changes['advertise_host']} (this host's interface address; "
            "--advertise-host chooses another)",
            file=sys.stderr,
        )
    return replace(config, **changes)


def _tls_fields(config: NodeConfig, ns: argparse.Namespace) -> dict[str, str]:
    """The node's TLS files: options (or $MPREG_TLS_*) over the config file's, made
    absolute and checked now: a typo is a usage error, not a node that fails to start."""
    files = TLSFiles(
        ns.tls_cert or config.tls_cert, ns.tls_key or config.tls_key, ns.tls_ca or config.tls_ca
    )
    if not files.enabled:
        return {}
    paths = (files.cert, files.key, files.ca)
    files = TLSFiles(*(str(Path(p).expanduser().resolve()) if p else "" for p in paths))
    server_context(files)  # raises UsageError naming the file that does not do
    return {"tls_cert": files.cert, "tls_key": files.key, "tls_ca": files.ca}


def cmd_stop(ns: argparse.Namespace) -> int:
    """``mpreg stop``: stop every node started on this host, with its actors."""
    records = state.list_records()
    if not records:
        print("no mpreg nodes run on this host")
        return 0
    killed = state.stop_nodes(records, grace=ns.timeout)
    names = ", ".join(f"{r.name} (pid {r.pid})" for r in records)
    print(f"stopped {len(records)} node{'s' if len(records) != 1 else ''}: {names}")
    if killed:
        print(f"  killed after {ns.timeout:g}s: {', '.join(r.name for r in killed)}")
    return 0


# --- talking to a cluster ---------------------------------------------------------------


def _target(ns: argparse.Namespace) -> tuple[str, str, TLSFiles]:
    """The node address to talk to, the token and the TLS files to use.

    Raises ClusterUnavailable if no address is given and no node runs here,
    UsageError if the address is malformed, no token is found anywhere, or
    the TLS options are incomplete.
    """
    address = ns.address or state.local_address()
    _check_address(address, "address")
    tls = TLSFiles.resolve(ns.tls_cert, ns.tls_key, ns.tls_ca).check()
    return address, client_token(ns.token), tls


def _check_address(address: str, what: str) -> None:
    try:
        parse_address(address)
    except ValueError as exc:
        raise UsageError(f"bad {what}: {exc}") from None


def cmd_status(ns: argparse.Namespace) -> int:
    """``mpreg status``: one snapshot of the cluster, as tables or JSON."""
    from mpreg.dashboard import build_snapshot, fetch_status, render_status

    address, token, tls = _target(ns)
    status = asyncio.run(fetch_status(address, token, tls))
    if ns.json:
        print(json.dumps(status.to_dict(), indent=2))
        return 0
    console().print(render_status(build_snapshot(status, source=address, now=time.time())))
    return 0


def cmd_top(ns: argparse.Namespace) -> int:
    """``mpreg top``: the live dashboard, until ``q``, Ctrl-C or SIGTERM (all exit 0)."""
    from mpreg.dashboard import run_top

    if ns.interval <= 0:
        raise UsageError("--interval must be positive")
    address, token, tls = _target(ns)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_top(address, token, console=console(), interval=ns.interval, once=ns.once, tls=tls)
        )
    return 0


def parse_value(text: str) -> Any:
    """A shell argument: JSON where it parses (``3``, ``[1,2]``, ``"x"``), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def cmd_call(ns: argparse.Namespace) -> int:
    """``mpreg call FUN ARGS...``: one call, its result as JSON; ``--list``: what there is."""
    from mpreg.commands import Command
    from mpreg.demo import as_json
    from mpreg.driver.client import Client

    if ns.list:
        return _list_functions(ns)
    if not ns.fun:
        raise UsageError("say which function to call (mpreg call FUN ARGS...), or --list")

    kwargs: dict[str, Any] = {}
    for item in ns.kw:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--kw takes KEY=VALUE, got {item!r}")
        kwargs[key] = parse_value(value)
    address, token, tls = _target(ns)
    name = f"<mpreg call {ns.fun}>"  # no argument can be mistaken for a reference to it
    command = Command(name, ns.fun, [parse_value(a) for a in ns.args], ns.dataset, kwargs or None)

    async def run() -> tuple[Any, str]:
        async with Client(
            address,
            token=token,
            name="mpreg-call",
            tls_cert=tls.cert,
            tls_key=tls.key,
            tls_ca=tls.ca,
        ) as client:
            result = await client.request([command], timeout=ns.timeout)
            return result[name], client.last_where.get(name, "")

    value, where = asyncio.run(run())
    print(as_json(value))
    if ns.where:
        print(f"ran on {where}", file=sys.stderr)
    return 0


def _list_functions(ns: argparse.Namespace) -> int:
    """``mpreg call --list``: every function, with its datasets, replicas and nodes."""
    from mpreg.dashboard import fetch_status
    from mpreg.driver.discovery import listing_table

    address, token, tls = _target(ns)
    status = asyncio.run(fetch_status(address, token, tls))
    console().print(listing_table(status))
    return 0


def cmd_client(ns: argparse.Namespace) -> int:
    """``mpreg client ADDRESS run``: the seed examples against a running cluster."""
    from mpreg.demo import run_client_examples

    address, token, tls = _target(ns)
    asyncio.run(run_client_examples(console(), address, token, tls))
    return 0


def cmd_demo(ns: argparse.Namespace) -> int:
    """``mpreg demo``: an embedded two-node cluster, the seed examples and a dataset DAG."""
    from mpreg.demo import EXAMPLES_MODULE, run_demo

    if not EXAMPLES_MODULE.is_file():
        raise UsageError(
            f"the demo needs examples/weather.py from the mpreg repository ({EXAMPLES_MODULE})"
        )
    asyncio.run(run_demo(console()))
    return 0
