"""Keys from the terminal for ``mpreg top``: stdin in cbreak mode, read by the event loop.

Inside ``with KeyReader()`` the terminal delivers each key at once, without
echo (Ctrl-C still interrupts); on the way out, by return, error or
cancellation, its previous mode is restored. Where stdin is no terminal
there are simply no keys.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import sys
from typing import Any

try:
    import termios
    import tty
except ImportError:  # Windows: no keys, the dashboard still runs
    termios = None  # type: ignore[assignment]
    tty = None  # type: ignore[assignment]


# An escape sequence (an arrow key: ESC [ A, ESC O A), else any single character (ESC too).
_KEY = re.compile(r"\x1b\[[0-9;?]*[@-~]|\x1bO.|.", re.DOTALL)


def split_keys(data: str) -> list[str]:
    """One read's characters as keys; an escape sequence (an arrow key) is one key."""
    return _KEY.findall(data)


class KeyReader:
    """Keys typed on the terminal ``fd`` (stdin's by default) while inside ``with``.

    They are awaited one at a time with :meth:`get`.
    """

    def __init__(self, fd: int | None = None) -> None:
        self._source = fd
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._fd = -1
        self._saved: list[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def active(self) -> bool:
        return self._fd >= 0

    def __enter__(self) -> KeyReader:
        if termios is None or tty is None:
            return self
        try:
            fd = sys.stdin.fileno() if self._source is None else self._source
            if not os.isatty(fd):
                return self
            self._saved = termios.tcgetattr(fd)
        except (OSError, ValueError, termios.error):
            return self
        tty.setcbreak(fd, termios.TCSANOW)
        self._fd = fd
        try:
            self._loop = asyncio.get_running_loop()
            self._loop.add_reader(fd, self._on_readable)
        except BaseException:
            self._restore()
            raise
        return self

    def _on_readable(self) -> None:
        try:
            data = os.read(self._fd, 64)
        except OSError:
            data = b""
        if not data:  # the terminal went away: no more keys
            self._stop_reading()
            return
        for key in split_keys(data.decode(errors="replace")):
            self._queue.put_nowait(key)

    async def get(self) -> str:
        """The next key; waits forever where there is no terminal."""
        return await self._queue.get()

    def _stop_reading(self) -> None:
        if self._loop is not None and self._fd >= 0:
            with contextlib.suppress(Exception):
                self._loop.remove_reader(self._fd)
        self._loop = None

    def _restore(self) -> None:
        if self._saved is not None and termios is not None:
            with contextlib.suppress(OSError, termios.error):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)
        self._saved = None
        self._fd = -1

    def __exit__(self, *_: object) -> None:
        self._stop_reading()
        self._restore()
