"""Helpers for the restart and kill-storm tests: a node's worker processes and CPU, from /proc."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable

from mpreg import Client
from mpreg.protocol.messages import EndpointStats


def _stat(pid: int) -> list[str]:
    """/proc/PID/stat fields after the command name: [0] is field 3 (state)."""
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()


def alive(pid: int) -> bool:
    """Running: neither gone nor a zombie its parent has yet to reap."""
    try:
        return _stat(pid)[0] != "Z"
    except OSError:
        return False


def children(pid: int) -> list[int]:
    """Live (not zombie) child processes of ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = _stat(int(entry))
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(entry))
    return found


def replica_pids(node_pid: int, label: str) -> list[int]:
    """Processes of ``node_pid`` serving actor ``label``, started or still starting up."""
    pids = []
    for child in children(node_pid):
        try:
            with open(f"/proc/{child}/cmdline", "rb") as f:
                args = f.read().decode(errors="replace").split("\0")
        except OSError:
            continue
        # Each worker is started with "--endpoint NODE_ID/LABEL-N".
        if any(f"/{label}-" in arg for arg in args):
            pids.append(child)
    return pids


def cpu_seconds(node_pid: int) -> float:
    """CPU time of a node, its live workers, and the workers it has reaped."""
    fields = _stat(node_pid)
    # utime, stime, cutime, cstime are fields 14-17 of /proc/PID/stat.
    ticks = sum(int(x) for x in fields[11:15])
    for child in children(node_pid):
        try:
            child_fields = _stat(child)
        except OSError:
            continue
        ticks += int(child_fields[11]) + int(child_fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


async def until(predicate: Callable[[], Awaitable[bool]], timeout: float = 20.0) -> None:
    async with asyncio.timeout(timeout):
        while not await predicate():  # noqa: ASYNC110 - polling a remote status
            await asyncio.sleep(0.02)  # ok-sleep: polling, bounded by the timeout


async def replicas(client: Client, label: str) -> list[EndpointStats]:
    return [e for e in (await client.status()).endpoints if e.label == label]
