"""Errors shown in IPython lose mpreg's own frames and keep the user's."""

from __future__ import annotations

import sys
import traceback
from typing import Any

from mpreg.driver import tracebacks
from mpreg.status import actor_rows


class Exploding:
    @property
    def nodes(self) -> Any:
        raise ValueError("from user code")


def test_trim_drops_the_frames_inside_mpreg_only() -> None:
    try:
        actor_rows(Exploding())  # type: ignore[arg-type]  # user code called back from mpreg
    except ValueError:
        tb = sys.exc_info()[2]
    frames = [f.name for f in traceback.extract_tb(tb)]
    assert frames == [
        "test_trim_drops_the_frames_inside_mpreg_only",
        "actor_rows",
        "nodes",
    ]
    trimmed = [f.name for f in traceback.extract_tb(tracebacks.trim(tb))]
    assert trimmed == ["test_trim_drops_the_frames_inside_mpreg_only", "nodes"]


def test_outside_ipython_nothing_is_installed() -> None:
    assert tracebacks.install() is False  # a script or pytest: no shell, nothing changed
