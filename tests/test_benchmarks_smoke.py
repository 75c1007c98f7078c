"""The benchmark suite runs end to end at tiny sizes, against mpreg and the floor only.

Ray and Dask (the bench dependency group) are never needed here; the figures
are not judged, only that every workload ran, gave correct results and was
reported in the table and the JSON.
"""

from __future__ import annotations

import io
import json
import os
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from benchmarks.__main__ import main
from benchmarks.config import METRICS
from benchmarks.procs import descendants

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    out = tmp_path_factory.mktemp("bench")
    buffer = io.StringIO()
    with redirect_stdout(buffer):
        code = main(
            ["--tiny", "--systems", "mpreg,floor", "--reps", "2", "--out", str(out), "--no-chart"]
        )
    return code, buffer.getvalue(), out


def test_benchmarks_run_every_workload_on_mpreg_and_the_floor(
    tiny_run: tuple[int, str, Path],
) -> None:
    code, printed, out = tiny_run
    assert code == 0, printed
    data = json.loads((out / "latest.json").read_text())
    assert not [r for r in data["runs"] if r.get("error")], printed
    assert sorted(r["system"] for r in data["runs"]) == ["floor", "floor", "mpreg", "mpreg"]
    for metric in METRICS:
        for system in ("mpreg", "floor"):
            entry = data["summary"][metric.key][system]
            assert entry["ok"], f"{system} gave wrong results in {metric.key}"
            assert entry["reps"] == 2
            assert entry["median"] > 0, f"{system} {metric.key} is zero"
        assert data["ratios"][metric.key]["floor"] > 0


def test_benchmarks_print_one_table_with_every_workload(tiny_run: tuple[int, str, Path]) -> None:
    _, printed, out = tiny_run
    for metric in METRICS:
        assert metric.title in printed
    assert "mpreg / floor" in printed
    assert "WRONG" not in printed
    markdown = (out / "latest.md").read_text()
    assert markdown.count("\n") == len(METRICS) + 2


def test_benchmarks_never_import_the_peers(tiny_run: tuple[int, str, Path]) -> None:
    assert "ray" not in sys.modules
    assert "distributed" not in sys.modules


def test_benchmarks_leave_no_process_behind(tiny_run: tuple[int, str, Path]) -> None:
    left = []
    for pid in descendants(os.getpid()):
        if pid == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"benchmarks" in cmdline or b"mpreg.server" in cmdline:
            left.append(cmdline.replace(b"\0", b" ").decode())
    assert not left
