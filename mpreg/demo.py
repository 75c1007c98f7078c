"""``mpreg demo`` and ``mpreg client ADDRESS run``: the seed examples, and dataset routing.

The demo starts an embedded cluster of two nodes on loopback ports, each
hosting two city actors from ``examples/weather.py`` (a seasonal regression
fitted from the repository's data when each actor starts), runs the seed
README's examples and a DAG whose commands are routed by dataset, prints
the results with where each command ran, and stops everything.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from mpreg.actors.definitions import discover
from mpreg.actors.loader import load_module
from mpreg.commands import Command
from mpreg.config import NodeConfig
from mpreg.driver.client import Client
from mpreg.driver.planner import sink_names
from mpreg.errors import ClusterUnavailable
from mpreg.host.cluster import LocalCluster
from mpreg.transport.tls import TLSFiles

EXAMPLES_MODULE = Path(__file__).resolve().parent.parent / "examples" / "weather.py"
ROUTES_TIMEOUT = 10.0

SEED_EXAMPLES: tuple[tuple[str, tuple[Command, ...]], ...] = (
    ("call things", (Command("first", "echo", ["hi there!"], []),)),
    (
        "use a result",
        (
            Command("first", "echo", ["hi there!"], []),
            Command("second", "echo", ["first"], []),
        ),
    ),
    (
        "clearer names",
        (
            Command("|first", "echo", ["hi there!"], []),
            Command("|second", "echo", ["|first"], []),
            Command("|third", "echos", ["|first", "AND ME TOO"], []),
        ),
    ),
    (
        "3-returns-1",
        (
            Command("|first", "echo", ["hi there!"], []),
            Command("|second", "echo", ["|first"], []),
            Command("|third", "echos", ["|first", "|second", "AND ME TOO"], []),
        ),
    ),
    (
        "4-returns-1",
        (
            Command("|first", "echo", ["hi there!"], []),
            Command("|second", "echo", ["|first"], []),
            Command("|third", "echos", ["|first", "|second", "AND ME TOO"], []),
            Command("|4th", "echo", ["|third"], []),
        ),
    ),
)

# Mid-July (day 196) in two hemispheres, on actors that live on different nodes.
WEATHER_DAG: tuple[Command, ...] = (
    Command("|london-jul", "predict", [196], ["london"]),
    Command("|sydney-jul", "predict", [196], ["sydney"]),
    Command("|gap", "difference", ["|london-jul", "|sydney-jul"], []),
    Command("|tokyo", "summary", [], ["tokyo"]),
    Command("|cairo", "summary", [], ["cairo"]),
    Command("|warmest", "warmest", ["|tokyo", "|cairo"], []),
)


@dataclass(frozen=True, slots=True)
class Outcome:
    """One request's results and where each result was computed."""

    title: str
    commands: tuple[Command, ...]
    results: dict[str, Any]
    where: dict[str, str]


def as_json(value: Any) -> str:
    """The value as the seed README prints it (JSON), or its repr if not JSON."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


async def run_seed_examples(client: Client) -> list[Outcome]:
    """Run every seed README example through ``client``."""
    outcomes = []
    for title, commands in SEED_EXAMPLES:
        results = in_order(commands, await client.request(commands, timeout=30))
        outcomes.append(Outcome(title, commands, results, dict(client.last_where)))
    return outcomes


def in_order(commands: Sequence[Command], results: dict[str, Any]) -> dict[str, Any]:
    """``results`` keyed in the order the commands were given (they arrive as they finish)."""
    return {c.name: results[c.name] for c in commands if c.name in results}


def seed_table(outcomes: Sequence[Outcome]) -> Table:
    """The seed examples: each request's final results and where they ran."""
    table = Table(title="Seed examples (results as the seed README shows them)")
    table.add_column("example", style="bold")
    table.add_column("result", overflow="fold")
    table.add_column("ran on", style="dim", overflow="fold")
    for outcome in outcomes:
        places = sorted(set(outcome.where.values()))
        table.add_row(outcome.title, Text(as_json(outcome.results)), Text(", ".join(places)))
    return table


def dag_table(outcome: Outcome) -> Table:
    """Every command of a DAG: what it called, on which datasets, its result, where it ran."""
    table = Table(title=outcome.title)
    table.add_column("command", style="bold")
    table.add_column("function")
    table.add_column("datasets")
    table.add_column("args", overflow="fold")
    table.add_column("result", overflow="fold")
    table.add_column("ran on", style="dim", overflow="fold")
    for cmd in outcome.commands:
        table.add_row(
            cmd.name,
            cmd.fun,
            ", ".join(cmd.datasets) or "-",
            Text(as_json(list(cmd.args))),
            Text(as_json(outcome.results.get(cmd.name))),
            Text(outcome.where.get(cmd.name, "")),
        )
    return table


def sinks(commands: Sequence[Command], results: dict[str, Any]) -> dict[str, Any]:
    """The results of the commands no other command references (what a request returns)."""
    return {name: results[name] for name in sink_names(commands)}


async def wait_for_datasets(client: Client, datasets: set[str], timeout: float) -> None:
    """Wait until the node ``client`` talks to routes to every dataset in ``datasets``."""
    deadline = time.monotonic() + timeout
    while True:
        status = await client.status()
        if datasets <= status.datasets:
            return
        if time.monotonic() > deadline:
            missing = ", ".join(sorted(datasets - status.datasets))
            raise ClusterUnavailable(f"datasets not served after {timeout:g}s: {missing}")
        await asyncio.sleep(0.05)


async def run_demo(console: Console, module_path: Path = EXAMPLES_MODULE) -> None:
    """Start a two-node embedded cluster, run the examples, print them, stop it all."""
    started = time.perf_counter()
    # Peers leaving at the end is expected here; keep the nodes' logs to errors.
    os.environ.setdefault("MPREG_LOG_LEVEL", "ERROR")
    # The nodes import the module themselves (by its path); here only to name its functions.
    module = load_module(str(module_path))
    found = discover(module)
    source = module.__file__
    layout = {"demo-1": ("London", "Tokyo"), "demo-2": ("Sydney", "Cairo")}
    cluster = LocalCluster()
    try:
        for name, classes in layout.items():
            config = NodeConfig(
                name=name,
                workers=1,
                eager_workers=False,  # an embedded cluster: started by the first echo
                actors=tuple(f"{source}:{c}" for c in classes),
                functions=tuple(f"{source}:{fn.__name__}" for fn in found.functions),
            )
            node = await cluster.add_node(config)
            console.print(f"[bold]{name}[/] at {node.address}: actors {', '.join(classes)}")
        # Its own loopback cluster, in clear text whatever $MPREG_TLS_* says.
        async with Client(
            cluster.address, token=cluster.token, tls_cert="", tls_key="", tls_ca=""
        ) as client:
            await wait_for_datasets(client, {"london", "sydney", "tokyo", "cairo"}, ROUTES_TIMEOUT)
            seed = await run_seed_examples(client)
            results = await client.request(WEATHER_DAG, timeout=30, return_all=True)
            dag = Outcome(
                "Dataset-routed DAG (every command shown; a request returns only its sinks)",
                WEATHER_DAG,
                results,
                dict(client.last_where),
            )
    finally:
        await cluster.stop()
    console.print()
    console.print(seed_table(seed))
    console.print()
    console.print(dag_table(dag))
    console.print(f"request result: {as_json(sinks(WEATHER_DAG, dag.results))}", soft_wrap=True)
    elapsed = time.perf_counter() - started
    console.print(f"\n[dim]2 nodes, 4 city actors, {elapsed:.1f}s; cluster stopped.[/]")


async def run_client_examples(
    console: Console, address: str, token: str | None, tls: TLSFiles | None = None
) -> None:
    """``mpreg client ADDRESS run``: the seed examples against a running cluster."""
    tls = tls or TLSFiles()
    async with Client(
        address, token=token, tls_cert=tls.cert, tls_key=tls.key, tls_ca=tls.ca
    ) as client:
        outcomes = await run_seed_examples(client)
    for outcome in outcomes:
        places = ", ".join(sorted(set(outcome.where.values())))
        line = Text(f"{outcome.title}: ")
        line.append(as_json(outcome.results), style="bold")
        line.append(f"   (ran on {places})", style="dim")
        console.print(line, soft_wrap=True)
