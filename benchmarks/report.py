"""The suite's outputs: a rich table, a markdown table, JSON and a PNG chart."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.table import Table

from benchmarks.config import METRIC_BY_KEY, METRICS, SYSTEMS, TARGETS, Metric, Sizes
from benchmarks.runner import SuiteResult


def _fmt(x: float) -> str:
    if x >= 1000:
        return f"{x:,.0f}"
    if x >= 100:
        return f"{x:.0f}"
    if x >= 10:
        return f"{x:.1f}"
    return f"{x:.2f}"


def _cell(metric: Metric, entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    second = entry.get("p99", entry.get("worst", 0.0))
    text = f"{_fmt(entry['median'] * metric.scale)} ({_fmt(second * metric.scale)})"
    return text if entry["ok"] else f"{text} WRONG"


def _ratio_cell(metric_key: str, peer: str, ratio: float | None) -> str:
    if ratio is None:
        return "-"
    verdicts = [
        ("met" if t.met(ratio) else "MISSED") + f" {t.text}"
        for t in TARGETS
        if t.metric == metric_key and t.peer == peer
    ]
    text = f"{ratio:.2f}x"
    return f"{text} {verdicts[0]}" if verdicts else text


def heading(result: SuiteResult, metric: Metric) -> str:
    """The metric's title with the sizes of this run (``--tiny`` sends 64 KiB, not 1 MiB)."""
    sizes = result.meta.get("sizes")
    return metric.heading(Sizes.from_dict(sizes) if sizes else Sizes())


def rows(result: SuiteResult) -> tuple[list[str], list[list[str]]]:
    """The table as strings: one row per metric, a column per system and per ratio."""
    systems = [s for s in SYSTEMS if any(s in v for v in result.summary.values())]
    peers = [s for s in systems if s != "mpreg"]
    header = ["workload", "unit", *systems, *(f"mpreg / {p}" for p in peers)]
    body = []
    for metric in METRICS:
        figures = result.summary.get(metric.key)
        if not figures:
            continue
        ratios = result.ratios.get(metric.key, {})
        body.append(
            [
                heading(result, metric),
                metric.unit,
                *(_cell(metric, figures.get(s)) for s in systems),
                *(_ratio_cell(metric.key, p, ratios.get(p)) for p in peers),
            ]
        )
    return header, body


def rich_table(result: SuiteResult) -> Table:
    header, body = rows(result)
    table = Table(
        title="mpreg vs the raw two-hop floor, Ray and Dask "
        f"(median over {result.meta['reps']} reps; in brackets p99, or worst rep)",
        title_justify="left",
    )
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i < 2 else "right", no_wrap=i >= 2)
    for row in body:
        styled = [
            c.replace("MISSED", "[bold red]MISSED[/]").replace("met ", "[green]met[/] ")
            for c in row
        ]
        table.add_row(*styled)
    return table


def markdown_table(result: SuiteResult) -> str:
    header, body = rows(result)
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in body]
    return "\n".join(lines)


def target_lines(result: SuiteResult) -> list[str]:
    out = []
    for t in result.targets:
        title = heading(result, METRIC_BY_KEY[t["metric"]])
        if t["met"] is None:
            out.append(f"not measured: {title} {t['target']}")
        else:
            verdict = "met   " if t["met"] else "MISSED"
            out.append(
                f"{verdict} {title}: {t['ratio']:.2f}x, target {t['target']} "
                f"(issue {t.get('issue', 4)})"
            )
    return out


def write_json(result: SuiteResult, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=1, default=str))


def write_chart(result: SuiteResult, path: Path) -> bool:
    """A bar per system for each metric (log scale); False if matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    metrics = [m for m in METRICS if m.key in result.summary]
    if not metrics:
        return False
    systems = [s for s in SYSTEMS if any(s in v for v in result.summary.values())]
    colors = {"mpreg": "#d62728", "floor": "#7f7f7f", "ray": "#1f77b4", "dask": "#ff7f0e"}
    cols = 3
    nrows = (len(metrics) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(4.2 * cols, 3.0 * nrows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=False):
        figures = result.summary[metric.key]
        names = [s for s in systems if s in figures]
        values = [figures[s]["median"] * metric.scale for s in names]
        ax.bar(names, values, color=[colors.get(s, "#333") for s in names])
        ax.set_yscale("log")
        better = "lower" if metric.better == "lower" else "higher"
        ax.set_title(f"{heading(result, metric)}\n{metric.unit}, {better} is better", fontsize=9)
        for i, v in enumerate(values):
            ax.text(i, v, _fmt(v), ha="center", va="bottom", fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.suptitle(
        f"mpreg benchmarks, median of {result.meta['reps']} reps ({result.meta['machine']})",
        fontsize=10,
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True
