"""What the CLI prints: the started-node banner, consoles, and every error as one line.

Errors arrive typed from the library; each kind is worded here, with its
exit code (2 for usage, 1 for everything else, 130 for Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from rich.console import Console

from mpreg.config import NodeConfig
from mpreg.errors import (
    AddressInUse,
    AuthenticationError,
    ConfigError,
    JoinFailed,
    ModuleLoadError,
    MpregError,
    RemoteError,
    TLSError,
    UsageError,
)
from mpreg.host import state
from mpreg.host.addresses import LOOPBACK
from mpreg.host.invocation import mpreg_command, temporary_environment_warning


def run_guarded(handler: Callable[[argparse.Namespace], int], ns: argparse.Namespace) -> int:
    """Run one command's handler; an error becomes its line on stderr and an exit code."""
    try:
        code = handler(ns)
        sys.stdout.flush()  # here, not at exit, so a reader that left is noticed below
        return code
    except BrokenPipeError:
        # The reader went away (`mpreg top | head -3`): nothing is wrong, and
        # nothing more can be said. Later writes and the exit flush go nowhere.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return 0
    except KeyboardInterrupt:
        return 130
    except (UsageError, ConfigError) as exc:
        return fail(str(exc), 2)
    except ModuleLoadError as exc:
        return fail(str(exc).rstrip(), 1)
    except RemoteError as exc:
        return fail(str(exc), 1)
    except AuthenticationError as exc:
        hint = "" if isinstance(exc, TLSError) else _token_hint(str(exc), ns)  # TLS: not the token
        return fail(f"{exc}{hint}", 1)
    except AddressInUse as exc:
        return fail(
            f"cannot start node {exc.node!r}: port {exc.port} on {exc.host} is already "
            "in use (another mpreg node? see `mpreg status`); choose another with --port",
            1,
        )
    except JoinFailed as exc:
        return fail(
            f"node {exc.node!r} could not join the cluster: {exc.reason} "
            "(is a node running there, and reachable from here?)",
            1,
        )
    except MpregError as exc:
        return fail(str(exc), 1)
    except OSError as exc:
        return fail(f"{exc.strerror or exc}" + (f": {exc.filename}" if exc.filename else ""), 1)


def _token_hint(message: str, ns: argparse.Namespace) -> str:
    """Where this command read its token, unless the message says already."""
    if "does not match" not in message or "read from" in message or not hasattr(ns, "token"):
        return ""
    from mpreg.cli.tokens import source_of

    return f" [this command read its token from {source_of(ns)}]"


def fail(message: str, code: int) -> int:
    sys.stderr.write(f"mpreg: error: {message.rstrip()}\n")
    return code


class _Console(Console):
    """A rich console that lets a broken pipe rise as BrokenPipeError.

    rich's own handling exits with status 1, which reads as a failure to
    ``set -o pipefail`` and to anyone checking ``$?``; :func:`run_guarded`
    ends the command cleanly instead.
    """

    def on_broken_pipe(self) -> None:
        self.quiet = True
        raise BrokenPipeError


def console() -> Console:
    """Rich output; wide when piped, so results are never wrapped mid-line."""
    if sys.stdout.isatty():
        return _Console(highlight=False)
    return _Console(width=int(os.environ.get("COLUMNS") or 160), highlight=False)


def print_started(
    record: state.NodeRecord, config: NodeConfig, *, blocking: bool = False, show_token: bool = True
) -> None:
    """What a started node tells its user: where it serves and how to use it.

    The token is printed only if ``show_token`` (it was made or read here, not
    given: a container's logs should not hold the secret it was handed).
    """
    address = record.address
    host = address.rpartition(":")[0].strip("[]")
    mpreg = mpreg_command()  # "uv run mpreg" when launched through uv: what works in this shell
    lines = [
        f"mpreg node {record.name!r} ({record.node_id}, pid {record.pid}) serves at {address}",
    ]
    if record.log:
        lines.append(f"  log: {record.log}")
    lines += [
        "",
        f"Add a node on this host:  {mpreg} start --join {address}",
    ]
    if host not in LOOPBACK:
        token = config.token if show_token else "$MPREG_TOKEN"
        lines.append(f"Add a node elsewhere:     mpreg start --join {address} --token {token}")
    lines += [
        f'Use it from Python:       mpreg.init("auto")   # or mpreg.init("{address}")',
        f"Look at it:               {mpreg} status   (live: {mpreg} top)",
        "Stop every node here:     " + ("Ctrl-C, or " if blocking else "") + f"{mpreg} stop",
    ]
    if config.tls_cert:  # every line above needs a certificate of its CA too
        lines.append(
            f"TLS only (CA {config.tls_ca}): nodes and clients need --tls-cert/--tls-key/"
            "--tls-ca or MPREG_TLS_CERT/KEY/CA, tls_cert=... in mpreg.init (mpreg tls init)"
        )
    print("\n".join(lines), flush=True)
    warning = None if blocking else temporary_environment_warning()
    if warning is not None:
        # A detached node outlives this command: its environment must too.
        sys.stderr.write(warning + "\n")
