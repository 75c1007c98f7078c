"""Per-user state on this host: the cluster token and the nodes ``mpreg start`` ran.

Layout of the state directory (``$MPREG_HOME``, else ``~/.mpreg``; mode 0700)::

    token               the cluster token (mode 0600), written by ``mpreg start --head``
    nodes/<pid>.json    one record per node started here (what ``mpreg stop`` stops)
    logs/<name>-<ts>.log  a detached node's stdout and stderr

A record whose process is gone (or whose pid was reused by another process)
is stale and is pruned whenever records are read.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mpreg.errors import ClusterUnavailable
from mpreg.host.invocation import mpreg_command

HOME_ENV = "MPREG_HOME"
TOKEN_ENV = "MPREG_TOKEN"


def state_dir(*, create: bool = False) -> Path:
    """The per-user state directory; ``create`` makes it (mode 0700) if missing.

    Reading never creates it, so a client that only looks for a token
    leaves no trace.
    """
    path = Path(os.environ.get(HOME_ENV) or Path.home() / ".mpreg").expanduser()
    if create:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _subdir(name: str, *, create: bool) -> Path:
    path = state_dir(create=create) / name
    if create:
        path.mkdir(mode=0o700, exist_ok=True)
    return path


# --- token --------------------------------------------------------------------


def token_path() -> Path:
    return state_dir() / "token"


def read_token() -> str | None:
    """The token stored for this host, or None if there is none."""
    try:
        text = token_path().read_text().strip()
    except FileNotFoundError:
        return None
    return text or None


def write_token(token: str) -> Path:
    """Store ``token`` for this host, readable by this user only (mode 0600)."""
    path = state_dir(create=True) / "token"
    tmp = path.with_suffix(f".{os.getpid()}.tmp")  # a node and the CLI may write at once
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    os.chmod(tmp, 0o600)  # the umask may have narrowed it, never widened; be exact
    os.replace(tmp, path)
    return path


def new_token() -> str:
    return secrets.token_urlsafe(24)


def follow_rotation(old: str, new: str) -> bool:
    """A node rotated ``old`` to ``new``: store ``new`` if this host's file holds ``old``.

    A file holding another cluster's token (or none) is left alone. Every
    node of the host may call it: the second write changes nothing.
    """
    if read_token() != old:
        return False
    write_token(new)
    return True


def default_token(explicit: str | None = None) -> str | None:
    """The token a client should use: explicit, else ``$MPREG_TOKEN``, else the stored one."""
    if explicit:
        return explicit
    return os.environ.get(TOKEN_ENV) or read_token()


def token_source(explicit: str | None = None) -> str:
    """Where :func:`default_token` finds the token, for messages: "" for an explicit one."""
    if explicit:
        return ""
    return f"${TOKEN_ENV}" if os.environ.get(TOKEN_ENV) else str(token_path())


# --- processes ----------------------------------------------------------------


def process_start_time(pid: int) -> int | None:
    """The kernel's start time of ``pid`` (clock ticks since boot), None if it is gone.

    Stored with each record so a reused pid is never mistaken for our node.
    Returns 0 where /proc is not available (then only liveness is checked).
    """
    if pid <= 0:
        return None
    if sys.platform != "linux":
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            return 0
        return 0
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces or parentheses: split after the last ')'.
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] in ("Z", "X"):  # a zombie has exited; only its parent's wait is pending
        return None
    return int(fields[19])


def pid_alive(pid: int, start_time: int | None = None) -> bool:
    """Whether ``pid`` runs (and, given ``start_time``, is still the same process)."""
    found = process_start_time(pid)
    if found is None:
        return False
    return start_time is None or found == 0 or start_time == 0 or found == start_time


# --- node records ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeRecord:
    """A node started on this host: enough to find it, connect to it and stop it.

    ``head`` marks a node that did not join another one. ``group`` marks a
    detached node that leads its own process group (its workers are in it),
    so ``mpreg stop`` can signal the whole group.
    """

    pid: int
    address: str
    node_id: str
    name: str
    head: bool
    group: bool
    start_time: int
    log: str = ""
    started_at: float = 0.0

    @property
    def alive(self) -> bool:
        return pid_alive(self.pid, self.start_time)


def nodes_dir(*, create: bool = False) -> Path:
    return _subdir("nodes", create=create)


def logs_dir(*, create: bool = False) -> Path:
    return _subdir("logs", create=create)


def new_log_path(name: str) -> Path:
    """A fresh log file path for a node called ``name``."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-") or "node"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return logs_dir(create=True) / f"{safe}-{stamp}-{secrets.token_hex(2)}.log"


def write_record(record: NodeRecord) -> Path:
    path = nodes_dir(create=True) / f"{record.pid}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(record)))
    os.replace(tmp, path)
    return path


def remove_record(pid: int) -> None:
    (nodes_dir() / f"{pid}.json").unlink(missing_ok=True)


def list_records(*, prune: bool = True) -> list[NodeRecord]:
    """Records of the nodes started here that still run, oldest first.

    Stale records (process gone, pid reused, unreadable file) are deleted
    unless ``prune`` is False.
    """
    found: list[NodeRecord] = []
    folder = nodes_dir()
    if not folder.is_dir():
        return found
    for path in sorted(folder.glob("*.json")):
        try:
            record = NodeRecord(**json.loads(path.read_text()))
        except (OSError, ValueError, TypeError):
            if prune:
                path.unlink(missing_ok=True)
            continue
        if record.alive:
            found.append(record)
        elif prune:
            path.unlink(missing_ok=True)
    return sorted(found, key=lambda r: (r.started_at, r.pid))


def stop_nodes(records: list[NodeRecord], *, grace: float = 15.0) -> list[NodeRecord]:
    """Stop the recorded nodes: SIGTERM, wait ``grace`` seconds, then SIGKILL.

    Only the node process gets SIGTERM (it stops its own workers; signalling
    them too would race its supervisor). Escalation and the final sweep kill
    a detached node's whole process group, so nothing it started survives.
    Returns the nodes that had to be killed.

    The policy of :func:`mpreg.processes.stop_processes`, done by pid: these
    nodes are not this process's children (nothing to wait() on, so their
    exit is polled), a recorded pid may belong to another process by now
    (checked by start time), and the caller is the synchronous CLI.
    """
    for record in records:
        if record.alive:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(record.pid, signal.SIGTERM)
    stubborn = _wait_gone(records, time.monotonic() + grace)
    for record in stubborn:
        _signal(record, signal.SIGKILL)
    _wait_gone(stubborn, time.monotonic() + 5.0)
    for record in records:
        if record.group:
            _signal(record, signal.SIGKILL)  # anything left in its group
        remove_record(record.pid)
    return stubborn


def _signal(record: NodeRecord, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if record.group:
            os.killpg(record.pid, sig)
        elif record.alive:
            os.kill(record.pid, sig)


def _wait_gone(records: list[NodeRecord], deadline: float) -> list[NodeRecord]:
    """Poll until every record's process is gone or the deadline; the ones still alive."""
    alive = [r for r in records if r.alive]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [r for r in alive if r.alive]
    return alive


@dataclass(frozen=True, slots=True)
class HostCluster:
    """Where the cluster started on this host listens, and its token."""

    address: str
    token: str
    nodes: tuple[NodeRecord, ...]


def _running_records() -> list[NodeRecord]:
    """The records of the nodes running here; raises ClusterUnavailable if there are none."""
    records = list_records()
    if not records:
        raise ClusterUnavailable(
            f"no mpreg cluster is running on this host (nothing recorded in {state_dir()}); "
            f"start one with `{mpreg_command()} start --head`, or give the address of a node"
        )
    return records


def _head(records: list[NodeRecord]) -> NodeRecord:
    return next((r for r in records if r.head), records[0])


def local_address() -> str:
    """Where the cluster started on this host listens (its head node, else the oldest node).

    Needs no token. Raises ClusterUnavailable, saying how to start one, if no node runs here.
    """
    return _head(_running_records()).address


def read_local_cluster() -> HostCluster:
    """The cluster ``mpreg start`` runs on this host (its head node first).

    Raises ClusterUnavailable, saying how to start one, if no node runs here,
    or how to give one if no token is found.
    """
    records = _running_records()
    chosen = _head(records)
    token = default_token()
    if token is None:
        raise ClusterUnavailable(
            f"mpreg runs on this host ({chosen.address}) but no token is stored in "
            f"{state_dir()}; pass token=... or set {TOKEN_ENV}"
        )
    return HostCluster(chosen.address, token, tuple(records))
