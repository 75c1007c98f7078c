"""The log files ``mpreg logs`` shows: a node's, or an actor's, found through the node records.

A node started by ``mpreg start`` logs to the file in its record
(``~/.mpreg/logs/<name>-<ts>.log``, rotated to ``.log.1`` ... by the node);
its actors print to ``<that file without .log>.actors/<actor>.log``
(:mod:`mpreg.host.logs`, :mod:`mpreg.actors.output`). A node that has
stopped is no longer recorded, but its files stay: the newest log of a node
of that name is still found.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from mpreg.actors.output import file_name
from mpreg.errors import UsageError
from mpreg.host import state
from mpreg.host.logs import actor_dir


@dataclass(frozen=True, slots=True)
class LogFile:
    """One file to show; ``label`` names it when several are shown together."""

    label: str
    path: Path


def find_logs(target: str | None) -> list[LogFile]:
    """The files ``mpreg logs [target]`` shows: every running node's without a target.

    ``target`` is a node (its name, pid or address) or an actor (its name).
    Raises UsageError, saying what there is, if nothing matches.
    """
    records = [r for r in state.list_records() if r.log]
    if target is None:
        if not records:
            raise UsageError("no mpreg node with a log file runs on this host (see `mpreg status`)")
        return [LogFile(r.name, Path(r.log)) for r in records]
    nodes = [r for r in records if target in (r.name, str(r.pid), r.address)]
    if nodes:
        return [LogFile(r.name, Path(r.log)) for r in nodes]
    actors = [
        LogFile(f"{target}@{r.name}", actor_dir(Path(r.log)) / f"{file_name(target)}.log")
        for r in records
    ]
    found = [a for a in actors if a.path.is_file()] or _stopped(target)
    if found:
        return found
    raise UsageError(f"no node or actor called {target!r} logs on this host; {_what_there_is()}")


def _stopped(target: str) -> list[LogFile]:
    """The newest file of a node or actor called ``target`` that no longer runs."""
    folder = state.logs_dir()
    if not folder.is_dir():
        return []
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "-", target).strip("-")
    candidates = [
        p
        for p in folder.glob(f"{safe}-*.log")
        if re.fullmatch(r"\d{8}-\d{6}-[0-9a-f]{4}", p.stem[len(safe) + 1 :])
    ]
    candidates += folder.glob(f"*.actors/{file_name(target)}.log")
    if not candidates:
        return []
    newest = max(candidates, key=lambda p: p.stat().st_mtime)
    return [LogFile(target, newest)]


def _what_there_is() -> str:
    records = [r for r in state.list_records() if r.log]
    if not records:
        return "no node runs here (`mpreg start` one)"
    actors = sorted({p.stem for r in records for p in actor_dir(Path(r.log)).glob("*.log")})
    nodes = ", ".join(r.name for r in records)
    return f"nodes: {nodes}; actors: {', '.join(actors) or 'none yet'}"


def last_lines(path: Path, count: int) -> tuple[list[bytes], int]:
    """The last ``count`` lines of ``path`` and the offset after them (its size then)."""
    with path.open("rb") as f:
        end = f.seek(0, os.SEEK_END)
        block, data = 64 * 1024, b""
        start = end
        while start > 0 and data.count(b"\n") <= count:
            start = max(0, start - block)
            f.seek(start)
            data = f.read(end - start)
    lines = data.splitlines(keepends=True)
    return lines[-count:] if count else [], end
