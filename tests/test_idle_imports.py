"""What an idle process imports: nothing it only needs to draw or to export metrics.

Each module costs resident memory in every process that imports it (rich ~6 MiB,
prometheus_client with http.server ~4 MiB): a node without ``--metrics-port`` and
a driver that never draws a bar or a table must not pay for them.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.cluster  # each check runs a fresh interpreter


def _imported(code: str) -> set[str]:
    script = textwrap.dedent(code) + "\nimport sys\nprint(' '.join(sorted(sys.modules)))\n"
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    return {name.partition(".")[0] for name in out.stdout.split()}


def test_a_node_process_imports_no_metrics_exporter_or_rich() -> None:
    found = _imported("import mpreg.host.server")
    assert "mpreg" in found
    assert not found & {"prometheus_client", "rich", "http", "email"}


def test_a_worker_process_imports_no_drawing_or_driver_code() -> None:
    found = _imported("import mpreg.actors.worker")
    assert not found & {"prometheus_client", "rich"}


def test_a_driver_imports_rich_only_to_draw() -> None:
    found = _imported(
        """
        import mpreg
        from mpreg.driver import api, waiting, display, bars
        """
    )
    assert "rich" not in found
    assert "rich" in _imported(
        "from mpreg.driver.bars import TerminalBar\nTerminalBar(1, 'x').close()"
    )
