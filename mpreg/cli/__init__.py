"""The ``mpreg`` command line: parses arguments, builds configs, calls the library.

    mpreg start --head | --join HOST:PORT | --config FILE.yaml   [options]
    mpreg stop | status [--json] | top | logs [NODE|ACTOR] [-f]
    mpreg call FUN [ARGS...] | client ADDRESS run | demo
    mpreg tls init [--dir DIR] [--hosts NAME,IP,...] [--days N] [--sign NAME] [--force]

Options also read ``MPREG_*`` environment variables (``MPREG_TOKEN``,
``MPREG_ADDRESS``, ``MPREG_HOST``, ``MPREG_PORT``, ...). An error is one line
on stderr and exit code 1 (2 for usage errors); a user module that fails to
import, or user code that raised, shows its traceback.

``parser`` holds the arguments, ``commands`` one thin handler per command,
``output`` what is printed (errors included); the work is the library's
(:mod:`mpreg.host.launch`, :mod:`mpreg.host.tokens`, the client).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from mpreg.cli.commands import parse_value
from mpreg.cli.output import run_guarded
from mpreg.cli.parser import build_parser, parse


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
    sys.exit(run_guarded(handler, ns))


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


__all__ = ["build_parser", "client_alias", "main", "parse", "parse_value", "server_alias"]
