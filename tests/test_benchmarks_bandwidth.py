"""The bandwidth benchmark runs end to end at 1 MB: every row, checked answers, ratios."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(120)]

ROOT = Path(__file__).resolve().parent.parent


def test_bandwidth_reports_mb_per_s_next_to_the_raw_echo() -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bandwidth",
            "--sizes",
            "1",
            "--reps",
            "2",
            "--put-sizes",
            "1",
            "--uses",
            "5",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=100,
    )
    assert done.returncode == 0, done.stderr
    rows = {
        line.split("|")[1].strip(): line
        for line in done.stdout.splitlines()
        if line.startswith("| ") and " MB/s" in line
    }
    assert set(rows) == {
        "raw loopback echo (2 processes)",
        "mpreg.request (driver -> node -> actor and back)",
        "5 submits, the array passed to each",
        "mpreg.put once, 5 submits of its future",
    }
    assert "%)" in rows["mpreg.put once, 5 submits of its future"]
    assert "%)" in rows["mpreg.request (driver -> node -> actor and back)"]  # its ratio
