"""``uv run --group bench python -m benchmarks [--quick] [--only NAME] [--reps N] [--systems ...]``

Runs the workloads against mpreg, the raw two-hop floor, Ray and Dask, alternating
systems within each repetition; prints one table and writes
``results/latest.json``, ``results/latest.md`` and ``results/latest.png``.
``--quick`` and ``--tiny`` write to a new temporary folder instead (or ``--out``),
so they never replace the committed full-run results.
Without the bench group (no Ray, Dask or matplotlib) it runs mpreg and the
floor and says which peers it skipped.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from rich.console import Console

from benchmarks.config import FULL, QUICK, SYSTEMS, TINY, WORKLOADS
from benchmarks.report import markdown_table, rich_table, target_lines, write_chart, write_json
from benchmarks.runner import run_suite

RESULTS = Path(__file__).resolve().parent / "results"


def _names(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in allowed]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown {what} {', '.join(unknown) or '(none)'}; choose from {', '.join(allowed)}"
        )
    return names


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n\n")[1]
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="smaller sizes (about 1/4 of the work)")
    size.add_argument(
        "--tiny", action="store_true", help="smoke-test sizes: every path, no figures"
    )
    parser.add_argument(
        "--only",
        type=lambda t: _names(t, WORKLOADS, "workload"),
        default=list(WORKLOADS),
        metavar="NAME[,NAME]",
        help=f"workloads to run ({', '.join(WORKLOADS)}); default all",
    )
    parser.add_argument("--reps", type=int, default=3, help="repetitions per system (default 3)")
    parser.add_argument(
        "--systems",
        type=lambda t: _names(t, SYSTEMS, "system"),
        default=list(SYSTEMS),
        metavar="NAME[,NAME]",
        help=f"systems to compare ({', '.join(SYSTEMS)}); default all installed",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results folder (default: benchmarks/results/ for a full run, "
        "a new temporary folder for --quick and --tiny)",
    )
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG chart")
    parser.add_argument("--width", type=int, default=200, help="table width in columns")
    ns = parser.parse_args(argv)
    if ns.reps < 1:
        parser.error("--reps must be at least 1")
    return ns


def results_dir(out: Path | None, scale: str) -> Path:
    """Where a run writes: ``--out``, else the committed results for a full run only.

    A ``--quick`` or ``--tiny`` run gets a new folder under the system's temp
    folder: its figures must never replace the full run the READMEs link.
    """
    if out is not None:
        return out
    if scale == "full":
        return RESULTS
    return Path(tempfile.mkdtemp(prefix=f"mpreg-bench-{scale}-"))


def main(argv: list[str] | None = None) -> int:
    ns = parse_args(argv)
    console = Console(width=ns.width)
    sizes = TINY if ns.tiny else QUICK if ns.quick else FULL
    scale = "tiny" if ns.tiny else "quick" if ns.quick else "full"
    out = results_dir(ns.out, scale)
    console.print(
        f"[bold]mpreg benchmarks[/]: systems {', '.join(ns.systems)}; workloads "
        f"{', '.join(ns.only)}; {ns.reps} reps; {scale} sizes"
    )
    console.print(f"results in {out}", soft_wrap=True)
    result = run_suite(
        ns.systems, sizes, ns.reps, ns.only, out, progress=lambda line: console.print(line)
    )
    for system, why in result.skipped.items():
        console.print(f"[yellow]skipped {system}[/]: {why}")
    loops = {r["system"]: r.get("loop", "") for r in result.runs if r.get("loop")}
    for system, loop in loops.items():
        console.print(f"loop {system}: {loop}")
    console.print(rich_table(result))
    for line in target_lines(result):
        console.print(line.replace("MISSED", "[bold red]MISSED[/]"))
    write_json(result, out / "latest.json")
    (out / "latest.md").write_text(markdown_table(result) + "\n")
    written = [out / "latest.json", out / "latest.md"]
    if not ns.no_chart and write_chart(result, out / "latest.png"):
        written.append(out / "latest.png")
    console.print("wrote " + ", ".join(str(p) for p in written), soft_wrap=True)
    errors = [r for r in result.runs if r.get("error")]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
