"""``mpreg logs [NODE|ACTOR] [-f]``: a node's log, or what an actor printed; ``-f`` follows.

The files are found by :mod:`mpreg.host.logfiles`. Following polls them
(every ``POLL`` seconds), reopens one that was rotated (a new inode, or it
shrank), and ends on Ctrl-C or SIGTERM with exit 0. With several files each
line is prefixed with the name of its node or actor.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import sys
import time
from pathlib import Path
from typing import BinaryIO

from mpreg.errors import UsageError
from mpreg.host.logfiles import LogFile, find_logs, last_lines

POLL = 0.2  # seconds between looks at a followed file


def cmd_logs(ns: argparse.Namespace) -> int:
    if ns.lines < 0:
        raise UsageError("--lines must be >= 0")
    files = find_logs(ns.target)
    out = sys.stdout.buffer
    tags = len(files) > 1
    offsets: list[int] = []
    try:
        for log in files:
            lines, end = last_lines(log.path, ns.lines) if log.path.exists() else ([], 0)
            _write(out, log, lines, tags)
            offsets.append(end)
        out.flush()
        if ns.follow:
            _follow(out, files, offsets, tags)
    except BrokenPipeError:
        # The reader went away (`mpreg logs | head`): a normal end, said nowhere.
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


def _write(out: BinaryIO, log: LogFile, lines: list[bytes], tags: bool) -> None:
    prefix = f"[{log.label}] ".encode() if tags else b""
    for line in lines:
        out.write(prefix + line)


def _follow(out: BinaryIO, files: list[LogFile], offsets: list[int], tags: bool) -> None:
    """Print what is appended to ``files`` until SIGINT or SIGTERM."""
    stop = False

    def on_term(_sig: int, _frame: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    watched = [_Watched(log, offset) for log, offset in zip(files, offsets, strict=True)]
    with contextlib.suppress(KeyboardInterrupt):
        while not stop:
            for w in watched:
                _write(out, w.log, w.read_new(), tags)
            out.flush()
            time.sleep(POLL)  # ok-sleep: polling a file; inotify is not portable


class _Watched:
    """One followed file: where its reader is, and which file (inode) that was."""

    def __init__(self, log: LogFile, offset: int) -> None:
        self.log = log
        self.offset = offset
        self.inode = _inode(log.path)
        self.partial = b""

    def read_new(self) -> list[bytes]:
        inode = _inode(self.log.path)
        if inode is None:
            return []  # between a rotation's rename and the new file
        try:
            size = self.log.path.stat().st_size
        except FileNotFoundError:
            return []
        data = self.partial
        if inode != self.inode or size < self.offset:
            # Rotated (or truncated): finish the old file (now ``.1``), then
            # read the new one from its start.
            data += self._rest_of_rotated()
            self.inode, self.offset = inode, 0
        if size > self.offset:
            with self.log.path.open("rb") as f:
                f.seek(self.offset)
                data += f.read(size - self.offset)
            self.offset = size
        lines = data.splitlines(keepends=True)
        if lines and not lines[-1].endswith(b"\n"):
            self.partial = lines.pop()  # half a line: wait for its end
        else:
            self.partial = b""
        return lines

    def _rest_of_rotated(self) -> bytes:
        old = self.log.path.with_name(self.log.path.name + ".1")
        if _inode(old) != self.inode:
            return b""  # rotated twice between two looks, or truncated: that part is gone
        with old.open("rb") as f:
            f.seek(self.offset)
            return f.read()


def _inode(path: Path) -> int | None:
    try:
        return path.stat().st_ino
    except FileNotFoundError:
        return None
