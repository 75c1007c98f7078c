"""Running the shipped notebooks on a real Jupyter kernel of this environment (nbclient).

The tests call :func:`execute`; run this file to refresh a notebook's committed outputs::

    uv run python tests/notebook_support.py notebooks/quickstart.ipynb
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
CELL_TIMEOUT = 60  # seconds for any one cell
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def execute(path: Path, env: dict[str, str] | None = None) -> Any:
    """Run every cell of ``path`` top to bottom in a fresh kernel; the executed notebook.

    The kernel is this interpreter's (``sys.executable``: the project's
    environment), started in the notebook's folder. A cell that raises fails
    the run unless it is tagged ``raises-exception`` (it is meant to show an
    error).
    """
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    # The kernel runs as this interpreter, whatever kernelspec is installed elsewhere.
    client.km = client.create_kernel_manager()
    client.km.kernel_cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    kernel_env = {**os.environ, **(env or {})}
    kernel_env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    client.execute(env=kernel_env)
    return nb


def code_cells(nb: Any) -> list[Any]:
    return [c for c in nb.cells if c.cell_type == "code"]


def text_of(cell: Any) -> str:
    """Everything a cell showed, as text: streams, plain and HTML reprs, errors."""
    parts: list[str] = []
    for out in cell.outputs:
        if out.output_type == "stream":
            parts.append(out.text)
        elif out.output_type == "error":
            parts.append(ANSI.sub("", "\n".join(out.traceback)))
        else:
            data = out.get("data", {})
            parts.extend(str(data[k]) for k in ("text/plain", "text/html") if k in data)
    return "\n".join(parts)


def html_of(cell: Any) -> str:
    """The cell's first HTML output ("" if none)."""
    for out in cell.outputs:
        if "text/html" in out.get("data", {}):
            return str(out.data["text/html"])
    return ""


def errors_of(cell: Any) -> list[Any]:
    return [o for o in cell.outputs if o.output_type == "error"]


if __name__ == "__main__":
    for name in sys.argv[1:]:
        target = Path(name).resolve()
        nbformat.write(execute(target), target)
        print(f"executed and saved {target}")
