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
import tempfile
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from benchmarks.__main__ import RESULTS, main, results_dir
from benchmarks.config import FULL, METRICS, TARGETS, TINY
from benchmarks.procs import descendants

pytestmark = pytest.mark.timeout(120)  # the tiny run starts ~20 processes; a loaded machine


def committed_results() -> dict[str, tuple[int, bytes]]:
    """The committed results the READMEs link: name -> (mtime in ns, content)."""
    return {
        path.name: (path.stat().st_mtime_ns, path.read_bytes())
        for path in sorted(RESULTS.glob("latest.*"))
    }


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[int, str, Path]:
    """A tiny run without --out, its default temporary folder kept inside pytest's."""
    temp = tmp_path_factory.mktemp("system-temp")
    before = committed_results()
    buffer = io.StringIO()
    with pytest.MonkeyPatch.context() as patch, redirect_stdout(buffer):
        patch.setattr(tempfile, "tempdir", str(temp))
        code = main(["--tiny", "--systems", "mpreg,floor", "--reps", "2", "--no-chart"])
    assert committed_results() == before, "a --tiny run touched benchmarks/results/latest.*"
    (out,) = temp.glob("mpreg-bench-tiny-*")
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


def test_a_tiny_run_writes_to_a_temporary_folder_it_names(
    tiny_run: tuple[int, str, Path],
) -> None:
    _, printed, out = tiny_run
    assert {p.name for p in out.glob("latest.*")} == {"latest.json", "latest.md"}
    assert f"results in {out}" in printed
    assert f"wrote {out / 'latest.json'}" in printed


def test_only_a_full_run_writes_the_committed_results_by_default(tmp_path: Path) -> None:
    assert results_dir(None, "full") == RESULTS
    assert results_dir(tmp_path, "tiny") == tmp_path
    assert results_dir(tmp_path, "full") == tmp_path
    quick = results_dir(None, "quick")
    try:
        assert quick.is_dir()
        assert quick.parent == Path(tempfile.gettempdir())
        assert quick.name.startswith("mpreg-bench-quick-")
    finally:
        quick.rmdir()


def test_workload_titles_carry_the_sizes_of_the_run() -> None:
    full = {m.key: m.heading(FULL) for m in METRICS}
    tiny = {m.key: m.heading(TINY) for m in METRICS}
    assert full["pipelined"] == "2 pipelined, 100 in flight"
    assert full["echo_1mib"] == "4 1 MiB numpy echo"
    assert full["echo_10mib"] == "4 10 MiB numpy echo"
    assert full["fanout"] == "7 fan-out 1000 over 2 replicas"
    assert full["sync_pipelined"] == "9 sync API, 100 submits then get"
    assert full["nn"] == "10 n:n, 4 drivers x own actor, 100 per batch"
    assert tiny["pipelined"] == "2 pipelined, 20 in flight"
    assert tiny["echo_1mib"] == "4 64 KiB numpy echo"
    assert tiny["echo_10mib"] == "4 1 MiB numpy echo"
    assert tiny["fanout"] == "7 fan-out 50 over 2 replicas"
    assert tiny["nn"] == "10 n:n, 4 drivers x own actor, 20 per batch"


def test_issue_12_rows_carry_their_targets() -> None:
    """The sync API, n:n and chain-on-an-actor rows are judged against Ray (issue 12)."""
    wanted = {
        ("sync_request", "ray"): 0.25,
        ("sync_request", "floor"): 1.6,
        ("sync_pipelined", "ray"): 10.0,
        ("pipelined", "ray"): 15.0,
        ("pipelined", "floor"): 0.4,
        ("nn", "ray"): 10.0,
        ("chain_actor", "ray"): 0.2,
        ("echo_1mib", "ray"): 0.4,
        ("idle_rss", "ray"): 0.15,
    }
    got = {(t.metric, t.peer): t.ratio for t in TARGETS}
    for key, ratio in wanted.items():
        assert got[key] == ratio, key
    nn = next(t for t in TARGETS if t.metric == "nn")
    assert nn.met(10.5) and not nn.met(9.9)
    chain = next(t for t in TARGETS if t.metric == "chain_actor")
    assert chain.met(0.19) and not chain.met(0.21)


def test_the_n_n_row_counts_every_driver(tiny_run: tuple[int, str, Path]) -> None:
    _, _, out = tiny_run
    data = json.loads((out / "latest.json").read_text())
    for run in data["runs"]:
        nn = run["metrics"]["nn"]
        assert nn["drivers"] == 4 and len(nn["per_driver"]) == 4
        assert nn["value"] == pytest.approx(4 * TINY.nn_calls / nn["seconds"])


def test_benchmarks_print_one_table_with_every_workload(tiny_run: tuple[int, str, Path]) -> None:
    _, printed, out = tiny_run
    for metric in METRICS:
        assert metric.heading(TINY) in printed
    assert "1000 over 2 replicas" not in printed
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
        if b"benchmarks" in cmdline or b"mpreg.host.server" in cmdline:
            left.append(cmdline.replace(b"\0", b" ").decode())
    assert not left
