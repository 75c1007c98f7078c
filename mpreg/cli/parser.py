"""The ``mpreg`` arguments: one subparser per command, each bound to its handler."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from mpreg.cli.commands import (
    cmd_call,
    cmd_client,
    cmd_demo,
    cmd_start,
    cmd_status,
    cmd_stop,
    cmd_top,
)
from mpreg.cli.logs import cmd_logs
from mpreg.cli.tls import cmd_tls_init
from mpreg.cli.tokens import DEFAULT_GRACE, cmd_token_rotate, cmd_token_show


class _Parser(argparse.ArgumentParser):
    """argparse, with one-line errors (exit 2) instead of a usage dump."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")
        sys.exit(2)


def _env(name: str) -> str | None:
    return os.environ.get(f"MPREG_{name}") or None


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
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")

    start = subparsers.add_parser("start", help="start a node on this host (detached)")
    start.add_argument(
        "--head",
        action="store_true",
        help="start a new cluster here (with --join: unless one of its seeds answers)",
    )
    start.add_argument(
        "--join",
        default=_env("JOIN"),
        metavar="HOST:PORT[,...]",
        help="join the cluster through the first of these seeds that answers; a DNS name "
        "stands for all its addresses (MPREG_JOIN)",
    )
    start.add_argument("--config", metavar="FILE", help="a YAML node config (dev-1.config.yaml)")
    start.add_argument(
        "--host", default=_env("HOST"), help="bind address (default 127.0.0.1; 0.0.0.0: all)"
    )
    start.add_argument("--port", type=int, default=_env("PORT"), help="head: 7773; join: free")
    start.add_argument(
        "--name", default=_env("NAME"), help="node name shown in status (default: HOSTNAME-PORT)"
    )
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
    eager = start.add_mutually_exclusive_group()
    eager.add_argument(
        "--eager-workers",
        dest="eager_workers",
        action="store_true",
        default=None,
        help="start the function workers with the node (the default; MPREG_EAGER_WORKERS=1)",
    )
    eager.add_argument(
        "--lazy-workers",
        dest="eager_workers",
        action="store_false",
        help="start each function worker on its first call: less idle memory, a slower "
        "first call (MPREG_EAGER_WORKERS=0)",
    )
    start.add_argument(
        "--metrics-port",
        type=int,
        default=_env("METRICS_PORT"),
        metavar="PORT",
        help="serve Prometheus metrics at http://HOST:PORT/metrics (MPREG_METRICS_PORT)",
    )
    start.add_argument(
        "--max-store-mb",
        type=int,
        default=_env("MAX_STORE_MB"),
        metavar="MB",
        help="megabytes of futures' results and put values this node holds (default 2048; "
        "MPREG_MAX_STORE_MB)",
    )
    start.add_argument(
        "--max-frame-mb",
        type=float,
        default=_env("MAX_FRAME_MB"),
        metavar="MIB",
        help="largest frame (so value) any peer may send, default 128 (MPREG_MAX_FRAME_MB)",
    )
    start.add_argument(
        "--frame-stall-timeout",
        type=float,
        default=None,
        metavar="S",
        help="close a connection whose frame stops arriving for S seconds (default 30)",
    )
    start.add_argument(
        "--metrics-auth",
        action="store_true",
        default=bool(_env("METRICS_AUTH")),
        help="scrapes must send the read-only credential as a Bearer token (MPREG_METRICS_AUTH)",
    )
    start.add_argument(
        "--advertise-host",
        default=_env("ADVERTISE_HOST"),
        metavar="HOST",
        help="the address peers and clients dial (default: the bind address; for 0.0.0.0 "
        "this host's interface address)",
    )
    start.add_argument(
        "--no-lanes",
        action="store_true",
        help="clients call workers only through the node, never over a worker's own port "
        "(MPREG_LANES=0)",
    )
    _token_option(start)
    _tls_options(start, "this node's")
    start.add_argument(
        "--log-format",
        choices=["kv", "json"],
        default=_env("LOG_FORMAT") or "kv",
        help="node log lines as key=value (default) or one JSON object each (MPREG_LOG_FORMAT)",
    )
    start.add_argument("--block", action="store_true", help="stay in the foreground")
    start.add_argument(
        "--timeout", type=float, default=300.0, help="seconds to wait for its actors to load"
    )
    start.set_defaults(handler=cmd_start)

    stop = subparsers.add_parser("stop", help="stop every node started on this host")
    stop.add_argument("--timeout", type=float, default=15.0, help="grace before SIGKILL")
    stop.set_defaults(handler=cmd_stop)

    status = subparsers.add_parser("status", help="nodes, roles, actors, datasets and load")
    _address_options(status)
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.set_defaults(handler=cmd_status)

    top = subparsers.add_parser("top", help="live dashboard")
    _address_options(top)
    top.add_argument("--interval", type=float, default=1.0, help="seconds between refreshes")
    top.add_argument("--once", action="store_true", help="print one frame and exit")
    top.set_defaults(handler=cmd_top)

    logs = subparsers.add_parser(
        "logs", help="a node's log, or what an actor printed (nodes started here)"
    )
    logs.add_argument(
        "target", nargs="?", metavar="NODE|ACTOR", help="default: every node on this host"
    )
    logs.add_argument("-f", "--follow", action="store_true", help="keep printing new lines")
    logs.add_argument(
        "-n", "--lines", type=int, default=100, help="lines shown from the end (default 100)"
    )
    logs.set_defaults(handler=cmd_logs)

    call = subparsers.add_parser("call", help="call one function from the shell")
    call.add_argument("fun", metavar="FUN", nargs="?")
    call.add_argument("args", nargs="*", metavar="ARG", help="JSON where it parses, else a string")
    call.add_argument("--dataset", action="append", default=[], metavar="D", help="(repeat)")
    call.add_argument(
        "--kw", action="append", default=[], metavar="KEY=VALUE", help="keyword argument"
    )
    call.add_argument("--timeout", type=float, default=None)
    call.add_argument("--where", action="store_true", help="also say where it ran (stderr)")
    call.add_argument(
        "--list", action="store_true", help="list the functions the cluster serves, and exit"
    )
    _address_options(call)
    call.set_defaults(handler=cmd_call)

    client = subparsers.add_parser("client", help="the seed client: `mpreg client ADDRESS run`")
    client.add_argument("address", nargs="?", default=_env("ADDRESS"), metavar="ADDRESS")
    client.add_argument("action", choices=["run"], help="run the seed examples")
    _token_option(client)
    _tls_options(client)
    client.set_defaults(handler=cmd_client)

    demo = subparsers.add_parser("demo", help="run an embedded cluster with dataset actors")
    demo.set_defaults(handler=cmd_demo)
    _tls_parser(subparsers)
    _token_commands(subparsers.add_parser("token", help="the cluster token: show, rotate"))
    return parser


def _token_commands(token: argparse.ArgumentParser) -> None:
    actions = token.add_subparsers(dest="token_command", metavar="ACTION", required=True)
    show = actions.add_parser("show", help="the token's fingerprint (never the token itself)")
    show.add_argument(
        "--read-only", action="store_true", help="print the read-only credential (status, metrics)"
    )
    _token_option(show)
    show.set_defaults(handler=cmd_token_show)
    rotate = actions.add_parser("rotate", help="a new token on every node; the old one for a grace")
    rotate.add_argument(
        "--grace",
        type=float,
        default=DEFAULT_GRACE,
        metavar="SECONDS",
        help=f"how long nodes still accept the old token (default {DEFAULT_GRACE:g})",
    )
    _address_options(rotate)
    rotate.set_defaults(handler=cmd_token_rotate)


class _TokenFlag(argparse.Action):
    """``--token``: also notes that the token came from the flag (errors name its source)."""

    def __call__(self, parser: object, ns: argparse.Namespace, value: object, *_: object) -> None:
        ns.token = value
        ns.token_flag = True


def _token_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--token",
        default=_env("TOKEN"),
        action=_TokenFlag,
        help="cluster token (MPREG_TOKEN; default: stored)",
    )


def _tls_options(parser: argparse.ArgumentParser, whose: str = "this client's") -> None:
    group = parser.add_argument_group("TLS (all three, or none: clear text)")
    group.add_argument(
        "--tls-cert", default=_env("TLS_CERT"), metavar="FILE", help=f"{whose} certificate"
    )
    group.add_argument("--tls-key", default=_env("TLS_KEY"), metavar="FILE", help=f"{whose} key")
    group.add_argument(
        "--tls-ca",
        default=_env("TLS_CA"),
        metavar="FILE",
        help="the cluster CA's certificate (MPREG_TLS_CERT, MPREG_TLS_KEY, MPREG_TLS_CA)",
    )


def _tls_parser(subparsers: argparse._SubParsersAction[_Parser]) -> None:
    tls = subparsers.add_parser("tls", help="TLS certificates for a cluster")
    actions = tls.add_subparsers(dest="tls_command", metavar="ACTION", required=True)
    init = actions.add_parser(
        "init", help="make a cluster CA with node and client certificates (or --sign one more)"
    )
    init.add_argument(
        "--dir", type=Path, default=None, help="where (default $MPREG_HOME/tls or ~/.mpreg/tls)"
    )
    init.add_argument(
        "--hosts",
        default="",
        metavar="NAME,IP,...",
        help="names and addresses nodes are dialled by (localhost, 127.0.0.1 are added)",
    )
    init.add_argument(
        "--days", type=int, default=None, help="days the certificates are valid (default 825)"
    )
    init.add_argument(
        "--sign", metavar="NAME", help="only add NAME.crt/NAME.key signed by the existing CA"
    )
    init.add_argument("--force", action="store_true", help="replace an existing CA (or NAME)")
    init.set_defaults(handler=cmd_tls_init)


def _address_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--address",
        default=_env("ADDRESS"),
        metavar="HOST:PORT",
        help="any node (MPREG_ADDRESS; default: the cluster started on this host)",
    )
    _token_option(parser)
    _tls_options(parser)


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


def _version() -> str:
    from mpreg import __version__

    return __version__
