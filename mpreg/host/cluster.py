"""A cluster of node processes on this host: the embedded cluster and the test fixture.

Each node is a real ``python -m mpreg.host.server`` process on an ephemeral
loopback port; the first is the head, the others join it. The processes
watch their stdin and stop when the parent closes it or dies. Their output
(logs, and what user code prints) goes to the parent's stderr, or to
``log_path`` when one is given (the first node's; the others' are
``<stem>-<n>.log`` beside it, each node rotating its own, its actors printing
to ``<stem>.actors/``): the embedded cluster of a notebook keeps its
log lines out of the cells.
:func:`start_detached` starts one node that outlives its caller (``mpreg start``).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from mpreg.actors.environment import child_env
from mpreg.config import NodeConfig, node_label
from mpreg.errors import ClusterUnavailable
from mpreg.host.addresses import advertise_host
from mpreg.host.announce import read_announce
from mpreg.host.handoff import encode_config
from mpreg.host.start_failures import start_error
from mpreg.processes import stop_processes

START_TIMEOUT = 300.0  # actors may load large datasets in __init__
STOP_GRACE = 10.0


@dataclass(eq=False)
class NodeProcess:
    config: NodeConfig
    process: asyncio.subprocess.Process
    address: str = ""
    node_id: str = ""
    name: str = ""  # as the node chose it (unnamed: "<short host name>-<port>")

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass(eq=False)
class LocalCluster:
    """Node processes started by this process; ``stop()`` ends them all."""

    token: str = field(default_factory=lambda: secrets.token_hex(16))
    nodes: list[NodeProcess] = field(default_factory=list)
    log_path: Path | None = None  # the first node's log (see the module doc); None: inherited

    @property
    def address(self) -> str:
        return self.nodes[0].address

    @property
    def addresses(self) -> list[str]:
        return [n.address for n in self.nodes]

    async def add_node(self, config: NodeConfig, *, join: bool = True) -> NodeProcess:
        """Start one node process (joining the first node unless ``join`` is False)."""
        peers = config.peers
        if join and self.nodes and not peers:
            peers = (self.nodes[0].address,)
        config = replace(
            config,
            token=self.token,
            peers=peers,
            advertise_host=advertise_host(config.host, config.advertise_host),
        )
        handoff = encode_config(config)
        # The node imports what the driver can import: classes pickled by
        # reference (defined in the driver's modules) must resolve there.
        env = child_env()
        # The ready line comes back on a private pipe: the node's and its
        # workers' stdout stay this process's own (a pipe nobody drains would
        # block the first worker that prints much).
        ready_r, ready_w = os.pipe()
        log_fd = None
        extra: list[str] = []
        log_path = self.node_log(len(self.nodes))
        if log_path is not None:
            log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            # A file nobody watches may say more than a terminal should.
            extra = ["--log-level", os.environ.get("MPREG_LOG_LEVEL", "INFO")]
            extra += ["--log-file", str(log_path)]
        try:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "mpreg.host.server",
                "--exit-with-parent",
                "--announce-fd",
                str(ready_w),
                *extra,
                stdin=asyncio.subprocess.PIPE,
                stdout=log_fd,
                stderr=log_fd,
                pass_fds=(ready_w,),
                env=env,
            )
        finally:
            os.close(ready_w)
            if log_fd is not None:
                os.close(log_fd)
        node = NodeProcess(config, process)
        self.nodes.append(node)
        assert process.stdin is not None
        process.stdin.write(handoff)
        await process.stdin.drain()
        try:
            announced = await asyncio.to_thread(read_announce, ready_r, START_TIMEOUT)
        except TimeoutError:
            raise ClusterUnavailable(
                f"node {node_label(config)!r} did not start within {START_TIMEOUT:g}s"
            ) from None
        finally:
            os.close(ready_r)
        if announced is None:
            code = await process.wait()
            if log_path is not None:
                raise start_error(config, None, _exit_reason(code, log_path))
            raise start_error(config, None, f"node exited with code {code}")
        if announced.error is not None:
            raise start_error(config, announced)
        node.address = announced.address
        node.node_id = announced.node_id
        node.name = announced.name or config.name
        return node

    def node_log(self, index: int) -> Path | None:
        """The log file of the ``index``-th node started (None: output inherited)."""
        if self.log_path is None or index == 0:
            return self.log_path
        return self.log_path.with_name(f"{self.log_path.stem}-{index}{self.log_path.suffix}")

    async def stop(self) -> None:
        """Close every node's stdin (a clean stop), then escalate: SIGTERM, SIGKILL."""
        procs = [n.process for n in self.nodes if n.process.returncode is None]
        for proc in procs:
            if proc.stdin is not None and not proc.stdin.is_closing():
                proc.stdin.close()
        await stop_processes(procs, grace=STOP_GRACE, what="node")


@dataclass(frozen=True, slots=True)
class DetachedNode:
    """A node started by :func:`start_detached`, as it announced itself."""

    address: str
    node_id: str
    pid: int
    name: str = ""


def start_detached(
    config: NodeConfig,
    *,
    log_path: Path,
    timeout: float = START_TIMEOUT,
    log_level: str = "INFO",
    log_format: str = "kv",
) -> DetachedNode:
    """Start a node in its own session that outlives this process; wait until it serves.

    The node logs to ``log_path`` (rotating it; its stdout and stderr are
    redirected there too, for a crash before logging starts); its ready line comes back
    on a private pipe. Raises a NodeStartError (AddressInUse, JoinFailed, or
    the node's own error, such as a module that fails to import) if it does
    not start, after making sure it is gone.
    """
    handoff = encode_config(config)
    config_r, config_w = os.pipe()
    ready_r, ready_w = os.pipe()
    log_fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        pid = os.posix_spawn(
            sys.executable,
            [
                sys.executable,
                "-m",
                "mpreg.host.server",
                "--announce-fd",
                "3",
                "--log-level",
                log_level,
                "--log-format",
                log_format,
                "--log-file",
                str(log_path),
            ],
            child_env(),
            file_actions=[
                (os.POSIX_SPAWN_DUP2, config_r, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
                (os.POSIX_SPAWN_DUP2, ready_w, 3),
            ],
            setsid=True,  # its own session and process group: no terminal hangup, one group
        )
    finally:
        for fd in (config_r, ready_w, log_fd):
            os.close(fd)
    try:
        with os.fdopen(config_w, "wb") as pipe:
            pipe.write(handoff)
    except BrokenPipeError:
        pass  # it died before reading its config: reported below from its log
    try:
        announced = read_announce(ready_r, timeout)
    except TimeoutError:
        _kill_group(pid)
        raise ClusterUnavailable(
            f"node {node_label(config)!r} did not start within {timeout:g}s (log: {log_path})"
        ) from None
    finally:
        os.close(ready_r)
    if announced is not None and announced.error is None:
        return DetachedNode(announced.address, announced.node_id, announced.pid, announced.name)
    code = _reap(pid, time.monotonic() + STOP_GRACE)
    detail = None if announced is not None and announced.error else _exit_reason(code, log_path)
    raise start_error(config, announced, detail)


def _reap(pid: int, deadline: float) -> int | None:
    """Wait for our child ``pid`` to exit (killing its group at the deadline); its exit code."""
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            _kill_group(pid, wait=False)  # workers it may have left behind
            return os.waitstatus_to_exitcode(status)
        if time.monotonic() > deadline:
            _kill_group(pid)
            return None
        time.sleep(0.02)


def _kill_group(pid: int, *, wait: bool = True) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    if wait:
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)


def _exit_reason(code: int | None, log_path: Path) -> str:
    try:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-15:]
    except OSError:
        tail = []
    what = "did not exit" if code is None else f"exited with code {code}"
    return f"the node {what}" + ("; its log ends:\n" + "\n".join(tail) if tail else "")
