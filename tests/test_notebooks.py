"""The shipped notebooks run top to bottom on a real Jupyter kernel, and show what they say.

Each is executed afresh with nbclient on a kernel of this environment (the
committed outputs are not trusted); a cell that raises fails the test unless
it is tagged ``raises-exception``, and then it must raise the error it shows.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from notebook_support import NOTEBOOKS, code_cells, errors_of, execute, html_of, text_of

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(180)]

QUICKSTART = NOTEBOOKS / "quickstart.ipynb"


def test_the_kernel_is_this_environment(tmp_path: Path) -> None:
    probe = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_code_cell("import sys; sys.executable")]
    )
    path = tmp_path / "probe.ipynb"
    nbformat.write(probe, path)
    ran = execute(path)
    assert text_of(code_cells(ran)[0]) == repr(sys.executable)


def test_quickstart_runs_and_shows_what_it_says(tmp_path: Path) -> None:
    cells = code_cells(execute(QUICKSTART, env={"MPREG_HOME": str(tmp_path)}))
    shown = [text_of(c) for c in cells]

    # Nothing the cluster logs lands in a cell: only the errors meant to be shown.
    for cell in cells:
        assert not [o for o in cell.outputs if o.get("name") == "stderr"], text_of(cell)

    init = next(c for c in cells if "mpreg.init(" in c.source)
    html = html_of(init)
    for name in ("local", "London", "Sydney", "london", "sydney", "predict"):
        assert name in html
    assert str(tmp_path / "logs") in html  # where the log went, said once

    assert "15 July: London 18.3 °C, Sydney 13.6 °C" in shown[2]
    assert shown[3] == "{'|gap': 4.7}"
    assert "results: 200/200" in shown[4] and "<progress value='200' max='200'" in shown[4]
    assert "200 predictions; warmest of days 1-200: day 193, 18.3 °C" in shown[4]

    misspelt, remote = (c for c in cells if "raises-exception" in c.metadata.get("tags", []))
    [error] = errors_of(misspelt)
    assert error.ename == "UnknownFunctionError"
    assert "did you mean 'predict'?" in error.evalue
    [error] = errors_of(remote)
    assert error.ename == "RemoteError"
    shown_error = text_of(remote)
    assert "Remote traceback (in " in shown_error and "TypeError" in shown_error
    assert "mpreg/driver" not in shown_error and "sync_client" not in shown_error

    status = next(c for c in cells if c.source.strip() == "status")
    assert "London  local  london    describe, predict  1         running" in text_of(status)
    for cell in cells:
        if cell not in (misspelt, remote):
            assert not errors_of(cell)


def test_the_committed_quickstart_carries_its_outputs() -> None:
    cells = code_cells(nbformat.read(QUICKSTART, as_version=4))
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1))
    assert sum(1 for c in cells if c.outputs) >= len(cells) - 2  # imports and shutdown say nothing


CLUSTER = NOTEBOOKS / "cluster.ipynb"


def test_cluster_notebook_deploys_redeploys_and_undeploys(tmp_path: Path) -> None:
    home = {"MPREG_HOME": str(tmp_path)}
    try:
        cells = code_cells(execute(CLUSTER, env=home))
    finally:
        # Its nodes are detached: whatever happened, none outlives the test.
        subprocess.run(
            [sys.executable, "-m", "mpreg.cli", "stop"],
            env={**os.environ, **home},
            capture_output=True,
            timeout=60,
        )
    shown = [text_of(c) for c in cells]
    for cell in cells:
        assert not errors_of(cell), text_of(cell)
    assert "mpreg node 'head'" in shown[0] and "start --join 127.0.0.1:" in shown[0]
    connect = next(
        o.data["text/html"] for o in cells[1].outputs if "text/html" in o.get("data", {})
    )
    assert "head" in connect and "second" in connect
    assert shown[2] == "('Greeter', 1, 2)"
    assert shown[3] == "['Hello, Ada!', 'Hello, Grace!', 'Hello, Barbara!', 'Hello, Frances!']"
    actors = [line.split() for line in shown[4].splitlines() if line.startswith("Greeter")]
    assert {row[2] for row in actors} == {"head", "second"}  # one replica on each node
    assert shown[5] == "(2, 'Welcome, ADA!')"
    assert "no process in the cluster serves function 'greet'" in shown[6]
    assert "stopped 2 nodes" in shown[7]


def test_the_committed_cluster_notebook_carries_its_outputs() -> None:
    cells = code_cells(nbformat.read(CLUSTER, as_version=4))
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1))
    assert all(c.outputs for c in cells)
