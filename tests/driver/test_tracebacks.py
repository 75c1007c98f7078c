"""Errors shown in IPython lose mpreg's own frames and keep the user's."""

from __future__ import annotations

import os
import subprocess
import sys
import traceback
from pathlib import Path
from typing import Any

import pytest

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


def test_outside_ipython_only_a_default_excepthook_is_wrapped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "excepthook", sys.__excepthook__)
    assert tracebacks.install() is False  # no IPython shell here
    assert sys.excepthook is tracebacks._excepthook
    mine = object()
    monkeypatch.setattr(sys, "excepthook", mine)
    tracebacks.install()
    assert sys.excepthook is mine  # a hook the program set is left alone


SCRIPT = """
import mpreg
from mpreg import Command

def boom(x):
    return 1 / x

mpreg.init(functions=[boom], workers=1)
mpreg.request([Command("b", "boom", [0], [])])
"""


@pytest.mark.cluster
@pytest.mark.timeout(60)
def test_a_script_that_dies_of_a_remote_error_shows_its_line_then_the_remote_traceback(
    tmp_path: Path,
) -> None:
    script = tmp_path / "dies.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "MPREG_HOME": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=50, env=env
    )
    assert done.returncode == 1
    err = done.stderr
    frames = [line for line in err.splitlines() if line.lstrip().startswith("File ")]
    # The script's own line, then the remote function's: nothing of mpreg's in between.
    assert len(frames) == 2, err
    assert str(script) in frames[0] and "in boom" in frames[1], err
    assert "RemoteError: command 'b' raised ZeroDivisionError" in err
    assert err.index("RemoteError") < err.index("Remote traceback")
