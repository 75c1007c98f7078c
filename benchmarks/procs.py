"""Process-tree helpers over /proc (Linux): memory of everything a driver started.

No psutil: the smoke test runs without the bench group.
"""

from __future__ import annotations

import os
import signal
from dataclasses import dataclass

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(command name, parent pid, session id) of ``pid``, None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read().decode(errors="replace")
    except OSError:
        return None
    # The name is in parentheses and may itself hold spaces or parentheses.
    name = raw[raw.index("(") + 1 : raw.rindex(")")]
    fields = raw[raw.rindex(")") + 2 :].split()
    return name, int(fields[1]), int(fields[3])


def _all_pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def descendants(root: int) -> list[int]:
    """``root`` and every live process below it."""
    children: dict[int, list[int]] = {}
    for pid in _all_pids():
        info = _stat(pid)
        if info is not None:
            children.setdefault(info[1], []).append(pid)
    found, stack = [], [root]
    while stack:
        pid = stack.pop()
        found.append(pid)
        stack.extend(children.get(pid, ()))
    return found


def in_session(sid: int) -> list[int]:
    """Live processes of session ``sid`` (a child started with start_new_session)."""
    out = []
    for pid in _all_pids():
        info = _stat(pid)
        if info is not None and info[2] == sid:
            out.append(pid)
    return out


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, ValueError, IndexError):
        return 0


def _pss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


@dataclass(frozen=True, slots=True)
class TreeMemory:
    """Memory of a process tree: RSS summed (what the issue asks) and PSS (shared pages
    split fairly between processes, so forked children are not double counted)."""

    processes: int
    rss_bytes: int
    pss_bytes: int
    names: tuple[str, ...]


def tree_memory(root: int) -> TreeMemory:
    pids = descendants(root)
    names = []
    rss = pss = 0
    for pid in pids:
        info = _stat(pid)
        if info is None:
            continue
        names.append(info[0])
        rss += _rss(pid)
        pss += _pss(pid)
    return TreeMemory(len(names), rss, pss, tuple(sorted(names)))


def kill_session(sid: int) -> list[int]:
    """SIGKILL what is left of session ``sid`` (a benchmark child's leftovers)."""
    killed = []
    for pid in in_session(sid):
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, signal.SIGKILL)
            killed.append(pid)
        except ProcessLookupError:
            pass
    return killed
