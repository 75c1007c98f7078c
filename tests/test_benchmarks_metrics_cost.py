"""The metrics cost benchmark runs end to end at a tiny size (its figures are not judged)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from cli_support import ROOT

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(90)]


def test_metrics_cost_benchmark_runs_on_and_off_and_reports_the_cost() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.metrics_cost", "--calls", "300", "--rounds", "2"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=80,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.count(" on ") >= 2 and out.count(" off ") >= 2, out
    assert "cost in throughput" in out and "cost in CPU per call" in out, out
