"""Runs the systems alternately, repetition after repetition, and aggregates.

Repetition r runs every system once, each in a fresh child process, in an
order rotated by r (so no system is always first after an idle machine or
always last on a warm one). Figures are per-repetition; the summary is the
median over repetitions (and, for latencies, the median of the per-repetition
p99s), never a single run.
"""

from __future__ import annotations

import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.config import METRICS, PEERS, TARGETS, WORKLOADS, Sizes
from benchmarks.procs import kill_session
from benchmarks.stats import median

REPO = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 900.0

PEER_MODULES = {"ray": "ray", "dask": "distributed"}


def available(system: str) -> bool:
    """Is a peer installed (``uv run --group bench``)? Checked without importing it."""
    module = PEER_MODULES.get(system)
    return module is None or importlib.util.find_spec(module) is not None


@dataclass
class SuiteResult:
    """Everything one run of the suite measured, ready for the report."""

    meta: dict[str, Any]
    runs: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)
    ratios: dict[str, dict[str, float]] = field(default_factory=dict)
    targets: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "skipped": self.skipped,
            "summary": self.summary,
            "ratios": self.ratios,
            "targets": self.targets,
            "runs": self.runs,
        }


def run_child(
    system: str, sizes: Sizes, selected: Sequence[str], log_path: Path, timeout: float
) -> dict[str, Any]:
    """One repetition of one system in a fresh process session; leftovers are killed."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    with tempfile.TemporaryDirectory(prefix="mpreg-bench-") as tmp:
        out = Path(tmp) / "result.json"
        args = [
            sys.executable,
            "-m",
            "benchmarks.child",
            system,
            json.dumps(sizes.to_dict()),
            ",".join(selected),
            str(out),
        ]
        with open(log_path, "wb") as log:
            proc = subprocess.Popen(
                args,
                cwd=REPO,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            error = ""
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                error = f"timed out after {timeout:g}s"
            finally:
                # Whatever the child left (a daemon that outlived it) dies with it.
                kill_session(proc.pid)
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        if error or not out.exists():
            return {
                "system": system,
                "metrics": {},
                "error": error or f"child exited with {proc.returncode} and no result",
            }
        loaded: dict[str, Any] = json.loads(out.read_text())
        return loaded


def run_suite(
    systems: Sequence[str],
    sizes: Sizes,
    reps: int,
    selected: Sequence[str] = WORKLOADS,
    out_dir: Path | None = None,
    progress: Callable[[str], None] = lambda line: None,
    timeout: float = CHILD_TIMEOUT,
) -> SuiteResult:
    """Measure ``systems`` alternately for ``reps`` repetitions and aggregate."""
    result = SuiteResult(
        meta={
            "started": time.strftime("%Y-%m-%d %H:%M:%S"),
            "python": platform.python_version(),
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
            "command": " ".join(["python -m benchmarks", *sys.argv[1:]]),
            "reps": reps,
            "sizes": sizes.to_dict(),
            "workloads": list(selected),
            "load_before": os.getloadavg()[0],
            "mpreg_commit": _git("rev-parse", "--short", "HEAD"),
            "mpreg_dirty": bool(_git("status", "--porcelain", "--", "mpreg")),
        }
    )
    runnable = []
    for system in systems:
        if available(system):
            runnable.append(system)
        else:
            result.skipped[system] = "not installed (uv run --group bench ...)"
    log_dir = Path(out_dir or tempfile.mkdtemp(prefix="mpreg-bench-")) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    for rep in range(reps):
        order = (
            runnable[rep % len(runnable) :] + runnable[: rep % len(runnable)] if runnable else []
        )
        for system in order:
            load = os.getloadavg()[0]
            t0 = time.perf_counter()
            log_path = log_dir / f"{system}-{rep + 1}.log"
            run = run_child(system, sizes, selected, log_path, timeout)
            run.update(rep=rep + 1, load=load, wall_seconds=time.perf_counter() - t0)
            result.runs.append(run)
            status = f"error: {run['error']} (log {log_path})" if run.get("error") else "ok"
            progress(
                f"rep {rep + 1}/{reps} {system:<5} {run['wall_seconds']:6.1f}s "
                f"load {load:4.2f}  {status}"
            )
    result.meta["load_after"] = os.getloadavg()[0]
    _aggregate(result, runnable)
    return result


def _git(*args: str) -> str:
    try:
        done = subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip()


def _aggregate(result: SuiteResult, systems: Sequence[str]) -> None:
    for metric in METRICS:
        per_system: dict[str, dict[str, Any]] = {}
        for system in systems:
            figures = [
                r["metrics"][metric.key]
                for r in result.runs
                if r["system"] == system and metric.key in r.get("metrics", {})
            ]
            if not figures:
                continue
            entry: dict[str, Any] = {"reps": len(figures), "ok": all(f["ok"] for f in figures)}
            if metric.kind == "latency":
                entry["median"] = median([f["p50"] for f in figures])
                entry["p99"] = median([f["p99"] for f in figures])
                entry["per_rep_p50"] = [f["p50"] for f in figures]
            else:
                values = [f["value"] for f in figures]
                entry["median"] = median(values)
                entry["worst"] = min(values) if metric.better == "higher" else max(values)
                entry["per_rep"] = values
            per_system[metric.key] = entry
            result.summary.setdefault(metric.key, {})[system] = entry
        mine = result.summary.get(metric.key, {}).get("mpreg")
        if mine is None:
            continue
        for peer, theirs in result.summary[metric.key].items():
            if peer != "mpreg" and theirs["median"]:
                result.ratios.setdefault(metric.key, {})[peer] = mine["median"] / theirs["median"]
    for target in TARGETS:
        ratio = result.ratios.get(target.metric, {}).get(target.peer)
        result.targets.append(
            {
                "metric": target.metric,
                "peer": target.peer,
                "target": target.text,
                "issue": target.issue,
                "ratio": ratio,
                "met": None if ratio is None else target.met(ratio),
            }
        )


__all__ = ["PEERS", "SuiteResult", "available", "run_suite"]
