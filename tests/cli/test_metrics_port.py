"""``mpreg start --metrics-port``: parsed into the node's config, checked, read from the env."""

from __future__ import annotations

import pytest

from mpreg.cli.commands import _apply_options
from mpreg.cli.parser import parse
from mpreg.config import NodeConfig
from mpreg.errors import UsageError


def test_metrics_port_reaches_the_node_config() -> None:
    ns = parse(["start", "--head", "--metrics-port", "9773"])
    assert _apply_options(NodeConfig(), ns).metrics_port == 9773


def test_no_metrics_port_serves_no_metrics() -> None:
    assert _apply_options(NodeConfig(), parse(["start", "--head"])).metrics_port is None


def test_metrics_port_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MPREG_METRICS_PORT", "9100")
    assert _apply_options(NodeConfig(), parse(["start", "--head"])).metrics_port == 9100


def test_metrics_port_out_of_range_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--metrics-port"):
        _apply_options(NodeConfig(), parse(["start", "--head", "--metrics-port", "70000"]))
