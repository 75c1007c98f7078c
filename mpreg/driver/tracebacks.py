"""Errors in IPython and Jupyter: the user's frames and the remote traceback, not mpreg's.

An mpreg error raised in a notebook cell travels through several of mpreg's
own frames (the sync facade, the client, the futures) before it reaches the
cell. They say nothing to the person reading the error, and stand between
the cell's line and the message with its remote traceback. Once
:func:`install` has run in an IPython shell, an :class:`~mpreg.errors.MpregError`
is shown with every frame inside the mpreg package dropped: the cell's line,
then the message and the remote traceback. Other exceptions are untouched.
A script that dies of an mpreg error prints it the same way.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path
from typing import Any

from mpreg.errors import MpregError

PACKAGE = str(Path(__file__).resolve().parents[1])  # the mpreg package directory


def _is_internal(frame: types.FrameType) -> bool:
    return str(Path(frame.f_code.co_filename).resolve()).startswith(PACKAGE)


def trim(tb: types.TracebackType | None) -> types.TracebackType | None:
    """``tb`` without the frames of mpreg's own code (the innermost user frame kept last)."""
    kept: list[types.TracebackType] = []
    while tb is not None:
        if not _is_internal(tb.tb_frame):
            kept.append(tb)
        tb = tb.tb_next
    trimmed: types.TracebackType | None = None
    for entry in reversed(kept):
        trimmed = types.TracebackType(trimmed, entry.tb_frame, entry.tb_lasti, entry.tb_lineno)
    return trimmed


def _show(
    shell: Any,
    etype: type[BaseException],
    value: BaseException,
    tb: types.TracebackType | None,
    tb_offset: int | None = None,
) -> list[str]:
    value.__suppress_context__ = True  # how mpreg got there is not the user's story
    stb: list[str] = shell.InteractiveTB.structured_traceback(
        etype, value, trim(tb), tb_offset=tb_offset
    )
    shell._showtraceback(etype, value, stb)
    return stb


def _excepthook(
    etype: type[BaseException], value: BaseException, tb: types.TracebackType | None
) -> None:
    if isinstance(value, MpregError):
        value.__suppress_context__ = True
        tb = trim(tb)
        value.__traceback__ = tb  # Python's hook prints the exception's own traceback
    sys.__excepthook__(etype, value, tb)


def install() -> bool:
    """Show mpreg's errors trimmed: in the running IPython shell, or when a script dies of one.

    In a script, only an uncaught :class:`~mpreg.errors.MpregError` is shown
    trimmed, and only while ``sys.excepthook`` is Python's own (a hook the
    program set is left alone). Returns whether an IPython shell was found;
    IPython is only looked for, never imported.
    """
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None:
        if sys.excepthook is sys.__excepthook__:
            sys.excepthook = _excepthook
        return False
    shell.set_custom_exc((MpregError,), _show)
    return True


__all__ = ["install", "trim"]
