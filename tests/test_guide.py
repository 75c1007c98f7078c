"""docs/guide.md cannot rot: its Python blocks run as one session, top to bottom, and
print what their comments say."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]

GUIDE = Path(__file__).resolve().parents[1] / "docs" / "guide.md"
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def blocks() -> list[str]:
    return BLOCK.findall(GUIDE.read_text())


def expected_lines(block: str) -> list[str]:
    """What a block says it prints: ``print(...)  # this``, or ``# this`` on the line after."""
    lines = block.splitlines()
    said = []
    for i, line in enumerate(lines):
        if "print(" not in line:
            continue
        inline = re.search(r"\)  # (.+)$", line)
        if inline:
            said.append(inline.group(1))
        elif i + 1 < len(lines) and lines[i + 1].startswith("# "):
            said.append(lines[i + 1][2:])
        elif i + 2 < len(lines) and lines[i + 2].startswith("# "):  # print inside try/except
            said.append(lines[i + 2][2:])
    return said


def test_the_guide_runs_and_prints_what_it_says(tmp_path: Path) -> None:
    code = blocks()
    assert len(code) >= 8
    done = subprocess.run(
        [sys.executable, "-c", "\n\n".join(code)],
        capture_output=True,
        text=True,
        timeout=100,
        cwd=tmp_path,
        env={"MPREG_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"},
    )
    assert done.returncode == 0, done.stderr
    printed = done.stdout.splitlines()
    for block in code:
        for line in expected_lines(block):
            assert line in printed, f"{line!r} not printed; got:\n{done.stdout}"
    # The embedded cluster logs to its file: stderr has the progress bar and nothing else.
    assert [line.split()[0] for line in done.stderr.splitlines()] == ["results"]
