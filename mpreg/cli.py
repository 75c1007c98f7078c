"""The ``mpreg`` command line: parses arguments, builds configs, calls the library.

    mpreg start --head | --join HOST:PORT | --config FILE.yaml   [options]
    mpreg stop | status [--json] | top | call FUN [ARGS...] | client ADDRESS run | demo

Options also read ``MPREG_*`` environment variables (``MPREG_TOKEN``,
``MPREG_ADDRESS``, ``MPREG_HOST``, ``MPREG_PORT``, ...). An error is one line
on stderr and exit code 1 (2 for usage errors); a user module that fails to
import, or user code that raised, shows its traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import socket
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

from rich.console import Console

from mpreg.config import DEFAULT_PORT, NodeConfig
from mpreg.errors import (
    AuthenticationError,
    ConfigError,
    ModuleLoadError,
    MpregError,
    RemoteError,
    UsageError,
)
from mpreg.host import state
from mpreg.host.config_file import load_config, resolve_module
from mpreg.transport.connection import parse_address

log = logging.getLogger("mpreg.cli")

LOOPBACK = ("127.0.0.1", "localhost", "::1")
WILDCARD = ("0.0.0.0", "::", "")


class _Parser(argparse.ArgumentParser):
    """argparse, with one-line errors (exit 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


def _env(name: str) -> str | None:
    return os.environ.get(f"MPREG_{name}") or None


# --- parser ---------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="mpreg",
        description="mpreg: run function X on dataset Y anywhere in a cluster.",
    )
    parser.add_argument("--version", action="version", version=f"mpreg {_version()}")
    parser.add_argument(
        "--log-level", default=_env("LOG_LEVEL"), help="DEBUG, INFO, WARNING (MPREG_LOG_LEVEL)"
    )
    # Not required here: argparse checks required arguments before it reports unknown
    # ones, so `mpreg --bogus` would blame the missing command. parse() checks both.
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    start = commands.add_parser("start", help="start a node on this host (detached)")
    mode = start.add_mutually_exclusive_group()
    mode.add_argument("--head", action="store_true", help="start a new cluster here")
    mode.add_argument("--join", metavar="HOST:PORT", help="join the cluster at this node")
    start.add_argument("--config", metavar="FILE", help="a YAML node config (dev-1.config.yaml)")
    start.add_argument("--host", default=_env("HOST"), help="bind address (default 127.0.0.1)")
    start.add_argument("--port", type=int, default=_env("PORT"), help="head: 7773; join: free")
    start.add_argument("--name", default=_env("NAME"), help="node name shown in status")
    start.add_argument(
        "--module",
        action="append",
        default=[],
        metavar="M",
        help="dotted module or .py file whose actors and functions this node serves (repeat)",
    )
    start.add_argument(
        "--resource",
        action="append",
        default=[],
        metavar="DATASET",
        help="a dataset this node's plain-function workers advertise (repeat)",
    )
    start.add_argument("--workers", type=int, default=_env("WORKERS"), help="function workers")
    start.add_argument("--advertise-host", default=_env("ADVERTISE_HOST"), metavar="HOST")
    _token_option(start)
    start.add_argument("--block", action="store_true", help="stay in the foreground")
    start.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for its actors to load"
    )
    start.set_defaults(handler=cmd_start)

    stop = commands.add_parser("stop", help="stop every node started on this host")
    stop.add_argument("--timeout", type=float, default=15.0, help="grace before SIGKILL")
    stop.set_defaults(handler=cmd_stop)

    status = commands.add_parser("status", help="nodes, roles, actors, datasets and load")
    _address_options(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)

    top = commands.add_parser("top", help="live dashboard")
    _address_options(top)
    top.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes")
    top.add_argument("--once", action="store_true", help="print one frame and exit")
    top.set_defaults(handler=cmd_top)

    call = commands.add_parser("call", help="call one function from the shell")
    call.add_argument("fun", metavar="FUN")
    call.add_argument("args", nargs="*", metavar="ARG", help="JSON where it parses, else a string")
    call.add_argument("--dataset", action="append", default=[], metavar="D", help="(repeat)")
    call.add_argument(
        "--kw", action="append", default=[], metavar="KEY=VALUE", help="keyword argument"
    )
    call.add_argument("--timeout", type=float, default=None)
    call.add_argument("--where", action="store_true", help="also say where it ran (stderr)")
    _address_options(call)
    call.set_defaults(handler=cmd_call)

    client = commands.add_parser("client", help="the seed client: `mpreg client ADDRESS run`")
    client.add_argument("address", nargs="?", default=_env("ADDRESS"), metavar="ADDRESS")
    client.add_argument("action", choices=["run"], help="run the seed examples")
    _token_option(client)
    client.set_defaults(handler=cmd_client)

    demo = commands.add_parser("demo", help="run an embedded cluster with dataset actors")
    demo.set_defaults(handler=cmd_demo)
    return parser


def _token_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token", default=_env("TOKEN"), help="cluster token (MPREG_TOKEN; default: stored)"
    )


def _address_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        default=_env("ADDRESS"),
        metavar="HOST:PORT",
        help="any node (MPREG_ADDRESS; default: the cluster started on this host)",
    )
    _token_option(parser)


# --- entry points -----------------------------------------------------------------------


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse ``argv``; unknown arguments, then a missing command, are usage errors (exit 2)."""
    parser = build_parser()
    ns, unknown = parser.parse_known_args(argv)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if ns.command is None:
        parser.error("say which command to run: " + ", ".join(_commands(parser)))
    return ns


def _commands(parser: argparse.ArgumentParser) -> list[str]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return list(action.choices)
    return []


def main(argv: Sequence[str] | None = None) -> None:
    """``mpreg ...``: run one command and exit with its code."""
    ns = parse(argv)
    handler: Callable[[argparse.Namespace], int] = ns.handler
    # A foreground node logs what it does; a client command's failure is its one error line.
    level = ns.log_level or ("INFO" if getattr(ns, "block", False) else "ERROR")
    logging.basicConfig(
        level=level.upper(), format="%(asctime)s %(name)s %(levelname)s %(message)s"
    )
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # like `python -m`: modules next to you import
    sys.exit(_run_guarded(handler, ns))


def server_alias(argv: Sequence[str] | None = None) -> None:
    """``mpreg-server --config FILE start``: the seed's server, in the foreground."""
    args = list(sys.argv[1:] if argv is None else argv)
    if "start" not in args:
        sys.stderr.write("mpreg-server: error: usage: mpreg-server --config FILE start\n")
        sys.exit(2)
    args.remove("start")
    main(["start", "--block", *args])


def client_alias(argv: Sequence[str] | None = None) -> None:
    """``mpreg-client ADDRESS run``: the seed's client."""
    main(["client", *(sys.argv[1:] if argv is None else argv)])


def _run_guarded(handler: Callable[[argparse.Namespace], int], ns: argparse.Namespace) -> int:
    try:
        return handler(ns)
    except KeyboardInterrupt:
        return 130
    except (UsageError, ConfigError) as exc:
        return _fail(str(exc), 2)
    except ModuleLoadError as exc:
        return _fail(str(exc).rstrip(), 1)
    except RemoteError as exc:
        return _fail(str(exc), 1)
    except AuthenticationError as exc:
        stored = state.token_path()
        hint = f" (this host's token is stored in {stored})" if stored.exists() else ""
        return _fail(f"{exc}{hint}", 1)
    except MpregError as exc:
        return _fail(str(exc), 1)
    except OSError as exc:
        return _fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), 1)


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"mpreg: error: {message.rstrip()}\n")
    return code


def _version() -> str:
    from mpreg import __version__

    return __version__


def _console() -> Console:
    """Rich output; wide when piped, so results are never wrapped mid-line."""
    if sys.stdout.isatty():
        return Console(highlight=False)
    return Console(width=int(os.environ.get("COLUMNS") or 160), highlight=False)


def _target(ns: argparse.Namespace) -> tuple[str, str]:
    """The node address to talk to and the token to use.

    Raises ClusterUnavailable if no address is given and no node runs here,
    UsageError if the address is malformed or no token is found anywhere.
    """
    address = ns.address or state.local_address()
    _check_address(address, "address")
    token = state.default_token(ns.token)
    if token is None:
        raise UsageError(
            f"no cluster token found (no --token, no {state.TOKEN_ENV}, nothing stored in "
            f"{state.token_path()}): pass --token or set {state.TOKEN_ENV} to the token that "
            "`mpreg start --head` stored on the cluster's head host (~/.mpreg/token there)"
        )
    return address, token


def _check_address(address: str, what: str) -> None:
    try:
        parse_address(address)
    except ValueError as exc:
        raise UsageError(f"bad {what}: {exc}") from None


# --- start / stop -----------------------------------------------------------------------


def cmd_start(ns: argparse.Namespace) -> int:
    """``mpreg start``: build the node's config, then start it detached or in the foreground."""
    if not (ns.head or ns.join or ns.config):
        raise UsageError(
            "say what to start: --head (a new cluster), --join HOST:PORT, or --config FILE"
        )
    config = load_config(ns.config) if ns.config else NodeConfig(name="head" if ns.head else "node")
    if ns.head and config.peers:
        raise UsageError(f"--head starts a new cluster, but {ns.config} joins {config.peers[0]}")
    if ns.join:
        _check_address(ns.join, "--join address")
    config = _apply_options(config, ns)
    joining = bool(config.peers)
    if ns.head:
        heads = [r for r in state.list_records() if r.head]
        if heads:
            raise UsageError(
                f"mpreg already runs on this host: {heads[0].name!r} at {heads[0].address} "
                f"(pid {heads[0].pid}); `mpreg stop` first, or add a node with "
                f"`mpreg start --join {heads[0].address}`"
            )
    config = replace(config, token=_start_token(ns.token, joining=joining))
    if ns.block:
        return _start_blocking(config, head=not joining)
    return _start_detached(config, head=not joining, timeout=ns.timeout, log_level=ns.log_level)


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
        changes["port"] = 0 if ns.join else DEFAULT_PORT
    if ns.workers is not None:
        if ns.workers < 0:
            raise UsageError("--workers must be >= 0")
        changes["workers"] = ns.workers
    modules = [*config.modules, *(resolve_module(m, Path.cwd()) for m in ns.module)]
    for module in modules:
        if module.endswith(".py") and not Path(module).is_file():
            raise UsageError(f"module file {module} does not exist")
    changes["modules"] = tuple(modules)
    changes["resources"] = (*config.resources, *ns.resource)
    if ns.join:
        changes["peers"] = (ns.join, *(p for p in config.peers if p != ns.join))
    host = changes.get("host", config.host)
    advertise = ns.advertise_host or config.advertise_host
    if not advertise and host in WILDCARD:
        advertise = _outbound_ip()
    changes["advertise_host"] = advertise
    return replace(config, **changes)


def _start_token(explicit: str | None, *, joining: bool) -> str:
    """The token a new node uses: given, else stored; a new cluster makes (and stores) one."""
    stored = state.read_token()
    if explicit:
        if not joining or stored is None:
            state.write_token(explicit)
        return explicit
    if joining:
        if stored is None:
            raise UsageError(
                "no cluster token: pass --token or set MPREG_TOKEN to the token of the "
                "cluster you join (stored on its head host in ~/.mpreg/token)"
            )
        return stored
    if stored and state.list_records():
        return stored  # other nodes of this host's cluster run: keep their token
    token = state.new_token()
    state.write_token(token)
    return token


def _start_detached(
    config: NodeConfig, *, head: bool, timeout: float, log_level: str | None
) -> int:
    from mpreg.host.cluster import start_detached

    log_path = state.new_log_path(config.name)
    try:
        node = start_detached(
            config, log_path=log_path, timeout=timeout, log_level=log_level or "INFO"
        )
    except MpregError as exc:
        raise type(exc)(_explain_start_failure(str(exc), config)) from None
    record = state.NodeRecord(
        pid=node.pid,
        address=node.address,
        node_id=node.node_id,
        name=config.name,
        head=head,
        group=True,
        start_time=state.process_start_time(node.pid) or 0,
        log=str(log_path),
        started_at=time.time(),
    )
    state.write_record(record)
    _print_started(record, config)
    return 0


def _start_blocking(config: NodeConfig, *, head: bool) -> int:
    from mpreg.host.server import serve
    from mpreg.transport.loop import install_best_loop

    def on_ready(node: Any) -> None:
        record = state.NodeRecord(
            pid=os.getpid(),
            address=node.address,
            node_id=node.node_id,
            name=config.name,
            head=head,
            group=False,
            start_time=state.process_start_time(os.getpid()) or 0,
            started_at=time.time(),
        )
        state.write_record(record)
        _print_started(record, config, blocking=True)

    install_best_loop()
    try:
        return asyncio.run(serve(config, announce=False, on_ready=on_ready))
    except OSError as exc:
        raise MpregError(_explain_start_failure(f"{exc.strerror or exc}", config)) from None
    finally:
        state.remove_record(os.getpid())


def _explain_start_failure(message: str, config: NodeConfig) -> str:
    lowered = message.lower()
    if "address already in use" in lowered or "errno 98" in lowered:
        return (
            f"cannot start node {config.name!r}: port {config.port} on {config.host} is already "
            "in use (another mpreg node? see `mpreg status`); choose another with --port"
        )
    if "ClusterUnavailable: " in message and config.peers:
        reason = message.partition("ClusterUnavailable: ")[2]
        return (
            f"node {config.name!r} could not join the cluster: {reason} "
            "(is a node running there, and reachable from here?)"
        )
    return message


def _print_started(record: state.NodeRecord, config: NodeConfig, *, blocking: bool = False) -> None:
    address = record.address
    host = address.rpartition(":")[0].strip("[]")
    lines = [
        f"mpreg node {record.name!r} ({record.node_id}, pid {record.pid}) serves at {address}",
    ]
    if record.log:
        lines.append(f"  log: {record.log}")
    lines += [
        "",
        f"Add a node on this host:  mpreg start --join {address}",
    ]
    if host not in LOOPBACK:
        lines.append(
            f"Add a node elsewhere:     mpreg start --join {address} --token {config.token}"
        )
    lines += [
        f'Use it from Python:       mpreg.init("auto")   # or mpreg.init("{address}")',
        "Look at it:               mpreg status   (live: mpreg top)",
        "Stop every node here:     " + ("Ctrl-C, or mpreg stop" if blocking else "mpreg stop"),
    ]
    print("\n".join(lines), flush=True)


def _outbound_ip() -> str:
    """This host's address on its default route (no packet is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("10.255.255.255", 1))
            return str(sock.getsockname()[0])
        except OSError:
            return "127.0.0.1"


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


# --- looking at the cluster ------------------------------------------------------------


def cmd_status(ns: argparse.Namespace) -> int:
    """``mpreg status``: one snapshot of the cluster, as tables or JSON."""
    from mpreg.dashboard import build_snapshot, fetch_status, render_status

    address, token = _target(ns)
    status = asyncio.run(fetch_status(address, token))
    if ns.json:
        print(json.dumps(status.to_dict(), indent=2))
        return 0
    _console().print(render_status(build_snapshot(status, source=address, now=time.time())))
    return 0


def cmd_top(ns: argparse.Namespace) -> int:
    """``mpreg top``: the live dashboard, until Ctrl-C or SIGTERM (both exit 0)."""
    from mpreg.dashboard import run_top

    if ns.interval <= 0:
        raise UsageError("--interval must be positive")
    address, token = _target(ns)
    console = _console()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_top(address, token, console=console, interval=ns.interval, once=ns.once))
    return 0


def parse_value(text: str) -> Any:
    """A shell argument: JSON where it parses (``3``, ``[1,2]``, ``"x"``), else the string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def cmd_call(ns: argparse.Namespace) -> int:
    """``mpreg call FUN ARGS...``: one call, its result printed as JSON."""
    from mpreg.commands import Command
    from mpreg.demo import as_json
    from mpreg.driver.client import Client

    kwargs: dict[str, Any] = {}
    for item in ns.kw:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--kw takes KEY=VALUE, got {item!r}")
        kwargs[key] = parse_value(value)
    address, token = _target(ns)
    name = f"<mpreg call {ns.fun}>"  # no argument can be mistaken for a reference to it
    command = Command(name, ns.fun, [parse_value(a) for a in ns.args], ns.dataset, kwargs or None)

    async def run() -> tuple[Any, str]:
        async with Client(address, token=token, name="mpreg-call") as client:
            result = await client.request([command], timeout=ns.timeout)
            return result[name], client.last_where.get(name, "")

    value, where = asyncio.run(run())
    print(as_json(value))
    if ns.where:
        print(f"ran on {where}", file=sys.stderr)
    return 0


def cmd_client(ns: argparse.Namespace) -> int:
    """``mpreg client ADDRESS run``: the seed examples against a running cluster."""
    from mpreg.demo import run_client_examples

    address, token = _target(ns)
    asyncio.run(run_client_examples(_console(), address, token))
    return 0


def cmd_demo(ns: argparse.Namespace) -> int:
    """``mpreg demo``: an embedded two-node cluster, the seed examples and a dataset DAG."""
    from mpreg.demo import EXAMPLES_MODULE, run_demo

    if not EXAMPLES_MODULE.is_file():
        raise UsageError(
            f"the demo needs examples/weather.py from the mpreg repository ({EXAMPLES_MODULE})"
        )
    asyncio.run(run_demo(_console()))
    return 0


if __name__ == "__main__":
    main()
