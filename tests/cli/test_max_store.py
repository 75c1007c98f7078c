"""The size of a node's store (``--max-store-mb``, ``MPREG_MAX_STORE_MB``, ``max_store_mb``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from mpreg.cli.commands import _apply_options
from mpreg.cli.parser import parse
from mpreg.config import DEFAULT_MAX_STORE_BYTES, NodeConfig
from mpreg.errors import ConfigError, UsageError
from mpreg.host.config_file import load_config

MiB = 1024 * 1024


def test_the_flag_reaches_the_node_config() -> None:
    ns = parse(["start", "--head", "--max-store-mb", "512"])
    assert _apply_options(NodeConfig(), ns).max_store_bytes == 512 * MiB


def test_the_default_and_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert _apply_options(NodeConfig(), parse(["start", "--head"])).max_store_bytes == (
        DEFAULT_MAX_STORE_BYTES
    )
    monkeypatch.setenv("MPREG_MAX_STORE_MB", "64")
    assert _apply_options(NodeConfig(), parse(["start", "--head"])).max_store_bytes == 64 * MiB


def test_a_store_of_nothing_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--max-store-mb"):
        _apply_options(NodeConfig(), parse(["start", "--head", "--max-store-mb", "0"]))


def test_the_config_file_key(tmp_path: Path) -> None:
    path = tmp_path / "node.yaml"
    path.write_text("name: n1\nmax_store_mb: 100\n")
    assert load_config(path).max_store_bytes == 100 * MiB
    path.write_text("name: n1\nmax_store_mb: lots\n")
    with pytest.raises(ConfigError, match="max_store_mb"):
        load_config(path)
