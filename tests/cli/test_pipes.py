"""``mpreg top`` and ``mpreg status`` into a real pipe whose reader leaves early (``| head``)."""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cli_support import Shell, command, private_shell


@pytest.fixture
def shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Shell]:
    yield from private_shell(tmp_path, monkeypatch)


def piped(shell: Shell, args: list[str], lines: int) -> tuple[int, str, str]:
    """``mpreg ARGS | head -LINES`` in bash: mpreg's exit code, head's output, mpreg's stderr."""
    err = shell.cwd / "stderr.txt"
    script = (
        f"{shlex.join([*command(), *args])} 2>{shlex.quote(str(err))} | head -{lines}; "
        'echo "mpreg exited ${PIPESTATUS[0]}"'
    )
    proc = subprocess.run(
        ["bash", "-c", script],
        cwd=shell.cwd,
        env=shell.env(),
        capture_output=True,
        text=True,
        timeout=40,
    )
    out, _, status = proc.stdout.rstrip("\n").rpartition("\n")
    assert status.startswith("mpreg exited "), proc.stdout + proc.stderr
    return int(status.removeprefix("mpreg exited ")), out, err.read_text()


@pytest.mark.cluster
@pytest.mark.timeout(90)
def test_top_status_and_start_end_cleanly_when_the_reader_goes_away(shell: Shell) -> None:
    code, out, err = piped(shell, ["start", "--head", "--port", "0", "--workers", "1"], 1)
    assert (code, err) == (0, ""), out
    assert out.startswith("mpreg node ")
    shell.records()

    # Frames every 0.2 s: the second one finds the pipe closed.
    code, out, err = piped(shell, ["top", "--interval", "0.2"], 3)
    assert (code, err) == (0, ""), out
    assert len(out.splitlines()) == 3
    assert out.startswith("mpreg top ")

    code, out, err = piped(shell, ["top", "--once", "--interval", "0.2"], 1)
    assert (code, err) == (0, ""), out
    assert out.startswith("mpreg top ")

    for args in (["status"], ["status", "--json"]):
        code, out, err = piped(shell, args, 1)
        assert (code, err) == (0, ""), out
        assert len(out.splitlines()) == 1
