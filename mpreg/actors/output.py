"""Where a worker process's stdout and stderr go: one file per actor, next to the node's log.

A node process that logs to a file (``python -m mpreg.host.server
--log-file X.log``) sets :func:`capture_in` to ``X.actors/``; each worker it
then spawns appends what it prints to ``X.actors/<label>.log`` (replicas
of one actor share it). Without it workers inherit the node's stdout and
stderr, as in tests and the foreground node.

A file past ``max_bytes`` is moved to ``<label>.log.1`` when the next
process of its actor starts: a worker holds its file open while it runs.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

MAX_BYTES = 10 * 1024 * 1024

_dir: Path | None = None
_max_bytes = MAX_BYTES


def capture_in(directory: Path | None, max_bytes: int = MAX_BYTES) -> None:
    """Capture workers' output under ``directory`` from now on (None: inherit it)."""
    global _dir, _max_bytes
    _dir, _max_bytes = directory, max_bytes


def file_name(label: str) -> str:
    """The file an actor called ``label`` prints to (a safe file name)."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", label).strip("._") or "worker"


def open_output(label: str) -> int | None:
    """A file descriptor (append) for the next worker of ``label``; None: inherit the node's."""
    if _dir is None:
        return None
    _dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = _dir / f"{file_name(label)}.log"
    try:
        if path.stat().st_size > _max_bytes:
            path.replace(path.with_name(path.name + ".1"))
    except FileNotFoundError:
        pass
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
