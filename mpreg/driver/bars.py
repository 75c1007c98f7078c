"""Progress bars for waiting on many futures: a notebook bar, or rich in a terminal.

:func:`bar` picks what fits where the caller runs: in a Jupyter kernel an
HTML ``<progress>`` element updated in place (through IPython's display
handles, so it needs no widget library and is saved with the notebook's
outputs); anywhere else a rich progress bar on stderr. Redraws are
throttled: a fan-out of thousands of fast calls does not flood the frontend.
"""

from __future__ import annotations

import html
import sys
import time
from typing import Any, Protocol

REDRAW_EVERY = 0.1  # seconds between two redraws of a notebook bar


class Bar(Protocol):
    def advance(self, n: int = 1) -> None: ...

    def close(self) -> None: ...


def bar(total: int, description: str = "mpreg") -> Bar:
    """A progress bar for ``total`` steps, drawn where it will be seen."""
    shell = _kernel_shell()
    if shell is not None:
        return NotebookBar(total, description)
    return TerminalBar(total, description)


def _kernel_shell() -> Any:
    """The IPython shell of a Jupyter kernel, if this process is one (never imported here)."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell if getattr(shell, "kernel", None) is not None else None


class NotebookBar:
    """An HTML bar in the cell's output, redrawn in place at most every REDRAW_EVERY s."""

    def __init__(self, total: int, description: str) -> None:
        from IPython.display import display

        self.total = total
        self.done = 0
        self.description = description
        self.started = time.monotonic()
        self._drawn_at = 0.0
        self._handle = display(self.render(), raw=True, display_id=True)

    def render(self) -> dict[str, str]:
        """The bar as HTML, and as text for frontends (and saved notebooks) without HTML."""
        elapsed = time.monotonic() - self.started
        count = f"{self.done}/{self.total} ({elapsed:.1f} s)"
        return {
            "text/html": f"<div class='mpreg-progress'>{html.escape(self.description)} "
            f"<progress value='{self.done}' max='{max(self.total, 1)}' style='width:40%'>"
            f"</progress> {count}</div>",
            "text/plain": f"{self.description}: {count}",
        }

    def advance(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if self.done >= self.total or now - self._drawn_at >= REDRAW_EVERY:
            self._drawn_at = now
            self._handle.update(self.render(), raw=True)

    def close(self) -> None:
        self._handle.update(self.render(), raw=True)  # the final count, whatever the throttle


class TerminalBar:
    """A rich progress bar on stderr (rich redraws at its own pace)."""

    def __init__(self, total: int, description: str) -> None:
        # rich is imported when a bar is drawn: a driver that never shows one saves ~6 MiB.
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=Console(stderr=True),
        )
        self._task = self._progress.add_task(description, total=total)
        self._progress.start()

    def advance(self, n: int = 1) -> None:
        self._progress.advance(self._task, n)

    def close(self) -> None:
        self._progress.stop()


__all__ = ["Bar", "NotebookBar", "TerminalBar", "bar"]
